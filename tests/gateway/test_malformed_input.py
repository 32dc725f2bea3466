"""Malformed input gets a 4xx with a clear message and changes nothing — never a 5xx."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.openapi import OPERATIONS
from megam import hmac


def _documented(method: str, *, with_path_params: bool) -> list[str]:
    """Routes of the OpenAPI document: the fuzz covers what the document says exists."""
    return sorted(
        path
        for (verb, path) in OPERATIONS
        if verb == method and path.startswith("/v1/") and ("{" in path) == with_path_params
    )


WRITE_ROUTES = _documented("POST", with_path_params=False)
READ_ROUTES = _documented("GET", with_path_params=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "email", "api_key", "name", "spec", "access", "credentials", "node_name", "predefcloud",
        "run_list", "noofinstances", "command", "req_type", "compute", "cctype", "type_name",
    ]
)  # fmt: skip
near_valid_bodies = st.dictionaries(field_names, json_values, max_size=6)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


class TestBodies:
    @pytest.mark.parametrize("path", [p for p in WRITE_ROUTES if p != "/v1/auth"])
    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (b"", "the request body is empty"),
            (b"{not json", "the request body is not valid JSON"),
            (b"[1, 2, 3]", "the request body must be a JSON object"),
            (b'"just a string"', "the request body must be a JSON object"),
            (b"\xff\xfe\x00", "the request body is not valid JSON"),
        ],
    )
    async def test_a_body_that_is_no_json_object_is_400(
        self, gateway: Any, path: str, body: bytes, message: str
    ) -> None:
        api = await gateway.operator()  # the operator may call every route, so it meets the parser
        response = await api.post(path, body)
        assert response.status == 400
        error = await response.json()
        assert (error["json_claz"], error["msg"]) == ("Megam::Error", message)

    @pytest.mark.parametrize("path", [p for p in WRITE_ROUTES if p != "/v1/auth"])
    @pytest.mark.parametrize("signed", [True, False])
    async def test_bytes_that_are_no_utf8_name_the_field(
        self, gateway: Any, path: str, signed: bool
    ) -> None:
        api = await gateway.operator()
        body = b'{"email": "\xff@example.com"}'
        if signed or path == "/v1/accounts/content":
            response = await api.post(path, body)
        else:
            response = await gateway.client.post(path, data=body)
        if not signed and path != "/v1/accounts/content":
            assert response.status == 401  # unsigned: refused before the body is parsed
            return
        assert response.status == 400
        error = await response.json()
        assert error["msg"] == "the request body is not UTF-8 text in the value of 'email'"
        assert "byte 0xff at position 11" in error["more"]

    @pytest.mark.parametrize("path", [p for p in WRITE_ROUTES if p != "/v1/auth"])
    @pytest.mark.parametrize("depth", [33, 1_000, 100_000])
    async def test_json_nested_too_deep_is_400(self, gateway: Any, path: str, depth: int) -> None:
        api = await gateway.operator()
        body = b'{"a": ' + b"[" * depth + b"]" * depth + b"}"
        response = await api.post(path, body)
        assert response.status == 400
        error = await response.json()
        assert error["msg"] == "the request body nests objects and arrays more than 32 levels deep"

    async def test_json_nested_within_the_limit_reaches_the_schema(self, gateway: Any) -> None:
        api = await gateway.operator()
        body = b'{"email": ' + b"[" * 31 + b"]" * 31 + b"}"
        response = await api.post("/v1/accounts/content", body)
        assert response.status == 400
        assert (await response.json())["msg"] == "the body is not a valid account"

    async def test_a_body_that_does_not_decompress_is_400(self, gateway: Any) -> None:
        api = await gateway.tenant()
        body = b"not gzip at all"
        response = await gateway.client.post(
            "/v1/nodes/content",
            data=body,
            headers={**api.headers("/v1/nodes/content", body), "Content-Encoding": "gzip"},
        )
        assert response.status == 400
        error = await response.json()
        assert error["msg"] == "the request body cannot be read"
        assert "content-encoding" in error["more"].lower()

    async def test_an_unknown_expectation_is_417_in_megam_words(self, gateway: Any) -> None:
        for value in ("something-else", "caf\xe9"):
            response = await gateway.client.get("/v1/nodes", headers={"Expect": value})
            assert response.status == 417
            error = await response.json()
            assert error["msg"] == "the Expect header can only be 100-continue"

    @pytest.mark.parametrize("q", ["a\x00b", "\x00", "two\x07words"])
    async def test_a_search_with_control_characters_is_400(self, gateway: Any, q: str) -> None:
        api = await gateway.tenant()
        response = await api.get("/v1/logs/search", q=q)
        assert response.status == 400
        assert (await response.json())["msg"] == (
            "query parameter q must be words of text, without control characters"
        )

    async def test_a_body_over_the_size_limit_is_413(self, gateway: Any) -> None:
        api = await gateway.tenant()
        huge = orjson.dumps({"node_name": "a.local", "predefcloud": "x" * 300_000})
        response = await api.post("/v1/nodes/content", huge)
        assert response.status == 413
        assert (await response.json())["msg"] == "the request body is too large"
        assert (await api.ok("/v1/nodes"))["results"] == []

    async def test_onboarding_over_the_size_limit_is_413(self, gateway: Any) -> None:
        response = await gateway.client.post(
            "/v1/accounts/content", data=b'{"email": "' + b"a" * 300_000 + b'"}'
        )
        assert response.status == 413

    async def test_unknown_routes_and_methods_are_megam_errors(self, gateway: Any) -> None:
        api = await gateway.tenant()
        missing = await api.get("/v1/nothing-here")
        assert missing.status == 404
        assert (await missing.json())["json_claz"] == "Megam::Error"
        wrong_method = await gateway.client.delete("/v1/nodes/a.local")
        assert wrong_method.status == 405
        assert (await wrong_method.json())["json_claz"] == "Megam::Error"


@pytest.fixture
async def tenant(gateway: Any) -> Any:
    """One account with a cloud and a node, shared by all examples of a fuzz test; the operator,
    so that operator routes are fuzzed past their permission check."""
    api = await gateway.operator()
    await api.launch("existing.local")
    return api


url_characters = st.characters(exclude_categories=["Cs"])  # a URL cannot carry surrogates
printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)


class TestFuzz:
    @pytest.mark.parametrize("path", WRITE_ROUTES)
    @FUZZ
    @given(body=near_valid_bodies | json_values)
    async def test_no_json_body_makes_a_5xx(self, tenant: Any, path: str, body: Any) -> None:
        raw = json.dumps(body).encode()  # stdlib: big integers, NaN and all
        if path.endswith("accounts/content"):
            response = await tenant.client.post(path, data=raw)
        else:
            response = await tenant.post(path, raw)
        assert response.status < 500, (body, await response.text())

    @pytest.mark.parametrize("route", READ_ROUTES)
    @FUZZ
    @given(
        name=st.text(url_characters.filter(lambda c: c not in "/?#%"), min_size=1, max_size=30),
        query=st.dictionaries(
            st.sampled_from(["tail", "after", "job", "limit", "name", "since"]),
            st.text(url_characters, max_size=25),
            max_size=3,
        ),
    )
    async def test_no_path_or_query_makes_a_5xx(
        self, tenant: Any, route: str, name: str, query: dict[str, str]
    ) -> None:
        path = hmac.request_target(re.sub(r"{\w+}", lambda _: name, route), query)
        # only the status is read: a live tail that opens would stream for ever
        async with tenant.client.get(path, headers=tenant.headers(path)) as response:
            assert response.status < 500, (path, query, await response.text())

    @FUZZ
    @given(signature=printable, date=printable, algorithm=printable)
    async def test_no_signature_header_makes_a_5xx(
        self, tenant: Any, signature: str, date: str, algorithm: str
    ) -> None:
        headers = {
            hmac.HMAC_HEADER: signature,
            hmac.DATE_HEADER: date,
            hmac.ALG_HEADER: algorithm,
        }
        response = await tenant.client.get("/v1/nodes", headers=headers)
        assert response.status in (401, 406), (headers, await response.text())
