"""``/v1/openapi.json`` describes exactly the routes the gateway serves, and how to call them."""

from __future__ import annotations

import re
from typing import Any

from gateway.openapi import is_console


async def test_the_document_is_open_and_lists_every_route(gateway: Any) -> None:
    response = await gateway.client.get("/v1/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in gateway.client.app.router.routes()
        if route.method != "HEAD" and not is_console(route.resource.canonical)
    }
    documented = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert documented == served


async def test_signed_routes_say_so_and_open_ones_do_not(gateway: Any) -> None:
    document = await (await gateway.client.get("/v1/openapi.json")).json()
    paths = document["paths"]
    assert paths["/v1/accounts/content"]["post"]["security"] == []
    assert paths["/healthz"]["get"]["security"] == []
    assert paths["/v1/nodes"]["get"]["security"] == [{"MegamHmac": []}]
    signed = [op for ops in paths.values() for op in ops.values() if op["security"]]
    assert len(signed) >= 20


async def test_path_parameters_and_bodies_are_described(gateway: Any) -> None:
    document = await (await gateway.client.get("/v1/openapi.json")).json()
    schemas = document["components"]["schemas"]
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), (method, path)
            for ref in _refs(op.get("requestBody", {})):
                assert ref.rsplit("/", 1)[1] in schemas
    launch = document["paths"]["/v1/nodes/content"]["post"]["requestBody"]
    one_of = launch["content"]["application/json"]["schema"]["oneOf"]
    assert [r["$ref"].rsplit("/", 1)[1] for r in one_of] == ["NodeLaunch", "NodeCreate"]
    short = schemas["NodeLaunch"]
    assert set(short["required"]) == {"node_name", "predefcloud"}
    assert short["properties"]["node_name"]["pattern"].startswith("^[a-z0-9]")


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if "$ref" in value else []
        return found + [ref for item in value.values() for ref in _refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _refs(item)]
    return []
