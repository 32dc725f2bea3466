"""The seeded catalogue: predefs and cloud tools (read-only, the same for every account)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway import catalogue, envelope, views
from gateway.errors import NotFound

routes = web.RouteTableDef()


def _seeded(claz: str, item: dict[str, Any]) -> dict[str, Any]:
    return envelope.obj(claz, {**item, "created_at": views.iso(item["created_at"])})


@routes.get("/v1/predefs")
async def list_predefs(request: web.Request) -> web.Response:
    return envelope.json(
        envelope.collection("Predef", (_seeded("Predef", p) for p in catalogue.PREDEFS.values()))
    )


@routes.get("/v1/predefs/{name}")
async def show_predef(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    predef = catalogue.PREDEFS.get(name)
    if predef is None:
        raise NotFound(f"no predef named {name}", more="GET /v1/predefs lists them")
    return envelope.json(_seeded("Predef", predef))


@routes.get("/v1/cloudtools")
async def list_cloudtools(request: web.Request) -> web.Response:
    tools = map(views.cloud_tool, catalogue.CLOUDTOOLS.values())
    return envelope.json(envelope.collection("CloudTool", tools))


@routes.get("/v1/cloudtools/{name}")
async def show_cloudtool(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    tool = catalogue.CLOUDTOOLS.get(name)
    if tool is None:
        raise NotFound(f"no cloud tool named {name}", more="GET /v1/cloudtools lists them")
    return envelope.json(views.cloud_tool(tool))
