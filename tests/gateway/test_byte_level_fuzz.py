"""No bytes on the wire make a 5xx: raw requests over a real socket, on every documented route,
signed and unsigned, with bodies that are not JSON, not UTF-8, truncated or nested deep, and odd
headers and paths. The fuzz talks HTTP/1.1 by hand so that nothing a client library would refuse
to send is left out."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.openapi import OPERATIONS

ROUTES = sorted(OPERATIONS)
FUZZ = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
fields = st.sampled_from(["email", "name", "node_name", "predefcloud", "spec", "command", "q"])


@st.composite
def broken_utf8(draw: st.DrawFn) -> bytes:
    """A JSON object whose string value carries bytes that are no UTF-8."""
    junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]))
    return b'{"' + draw(fields).encode() + b'": "a' + junk + b'b"}'


@st.composite
def other_encodings(draw: st.DrawFn) -> bytes:
    text = json.dumps({draw(fields): draw(st.text(max_size=10))}, ensure_ascii=False)
    encoding = draw(st.sampled_from(["utf-16", "utf-16-be", "utf-32", "latin-1", "utf-8-sig"]))
    return text.encode(encoding, errors="replace")


@st.composite
def truncated_json(draw: st.DrawFn) -> bytes:
    whole = json.dumps({draw(fields): draw(json_values)}).encode()
    return whole[: draw(st.integers(0, max(0, len(whole) - 1)))]


@st.composite
def deep_json(draw: st.DrawFn) -> bytes:
    depth = draw(st.sampled_from([31, 33, 100, 1_000, 5_000, 50_000]))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    core = opener * depth + b"1" + closer * depth
    return b'{"x": ' + core + b"}" if draw(st.booleans()) else core


bodies = st.one_of(
    st.binary(max_size=300),
    broken_utf8(),
    other_encodings(),
    truncated_json(),
    deep_json(),
    st.builds(lambda v: json.dumps(v).encode(), json_values),
)
header_names = st.sampled_from(
    [
        "Content-Type", "Content-Encoding", "Accept", "Accept-Encoding", "Last-Event-ID",
        "X-Request-Id", "Cookie", "Origin", "Expect", "Upgrade", "Connection", "X-Megam-HMAC-ALG",
    ]
)  # fmt: skip
header_values = st.one_of(
    st.sampled_from(["gzip", "deflate", "br", "application/json; charset=latin-1", "100-continue",
                     "websocket", "-1", "9" * 40, "text/event-stream"]),
    st.binary(max_size=40).map(lambda b: bytes(c for c in b if c not in b"\r\n").decode("latin-1")),
)  # fmt: skip
odd_headers = st.lists(st.tuples(header_names, header_values), max_size=3)
segments = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20).map(
        lambda t: quote(t, safe="")
    ),
    st.binary(min_size=1, max_size=12).map(lambda b: "".join(f"%{x:02x}" for x in b)),
    st.sampled_from(["..", ".", "%2e%2e", "%2F", "a%00b", "%", "%zz", "x" * 300]),
)
queries = st.one_of(
    st.just(""),
    st.lists(st.tuples(st.sampled_from(["q", "tail", "after", "job", "limit", "since", "step",
                                        "state", "node", "name"]), segments), max_size=3).map(
        lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)
    ),
    st.binary(max_size=20).map(lambda b: "".join(f"%{x:02x}" for x in b)),
)  # fmt: skip


def fill(route: str, segment: str) -> str:
    return re.sub(r"{\w+}", lambda _: segment, route)


async def exchange(port: int, request: bytes) -> int:
    """Send raw bytes; the status of the answer (only the status line is read)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(30):
            status_line = await reader.readline()
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1."), (request[:300], status_line)
    return int(status_line.split()[1])


def raw_request(
    method: str, target: str, body: bytes, headers: list[tuple[str, str]]
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


@pytest.fixture
async def tenant(gateway: Any) -> Any:
    """The operator (who may call every route) with a node, shared by a test's examples."""
    api = await gateway.operator()
    await api.launch("existing.local")
    return api


class TestEveryRouteAtTheByteLevel:
    @pytest.mark.parametrize(("method", "route"), ROUTES)
    @FUZZ
    @given(body=bodies, segment=segments, query=queries, headers=odd_headers, signed=st.booleans())
    async def test_no_request_makes_a_5xx(
        self,
        tenant: Any,
        method: str,
        route: str,
        body: bytes,
        segment: str,
        query: str,
        headers: list[tuple[str, str]],
        signed: bool,
    ) -> None:
        if route.endswith("/stream") or route.endswith("/ws"):
            body = b""  # a live tail that opens streams for ever: only its status is read
        path = fill(route, segment)
        target = f"{path}?{query}" if query else path
        if signed:
            headers = [*headers, *tenant.headers(target, body).items()]
        port = tenant.client.server.port
        status = await exchange(port, raw_request(method, target, body, headers))
        assert status < 500, (method, target, body[:200], headers)


class TestHostilePaths:
    @FUZZ
    @given(raw=st.binary(min_size=1, max_size=60), signed=st.booleans())
    async def test_raw_bytes_in_the_request_target_are_no_5xx(
        self, tenant: Any, raw: bytes, signed: bool
    ) -> None:
        target = "/v1/" + raw.replace(b" ", b"").replace(b"\r", b"").replace(b"\n", b"").decode(
            "latin-1"
        )
        headers = list(tenant.headers(target).items()) if signed else []
        status = await exchange(tenant.client.server.port, raw_request("GET", target, b"", headers))
        assert status < 500, target

    @pytest.mark.parametrize("target", ["/v1/nodes", "/v1/accounts/%7B", "/nowhere", "/"])
    async def test_an_expect_that_is_no_utf8_is_a_417_on_any_path(
        self, gateway: Any, target: str
    ) -> None:
        request = raw_request("GET", target, b"", [("Expect", "\x80\xff")])
        assert await exchange(gateway.client.server.port, request) == 417
