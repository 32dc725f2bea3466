"""Slow clients cannot hold the gateway's connections: headers and bodies must arrive in time.

The gateway is served here the way ``megam gateway`` and ``megam up`` serve it
(:func:`gateway.app.runner`), on a real socket, with short timeouts.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web

from gateway.app import runner
from tests.gateway.conftest import FAST

HEADER_TIMEOUT = 0.5
BODY_TIMEOUT = 0.5


@pytest.fixture
async def port(embedded_bus: Any, make_app: Any) -> AsyncIterator[int]:
    options = dataclasses.replace(
        FAST, header_timeout_seconds=HEADER_TIMEOUT, body_timeout_seconds=BODY_TIMEOUT
    )
    app_runner = runner(make_app(embedded_bus, options))
    await app_runner.setup()
    site = web.TCPSite(app_runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield app_runner.addresses[0][1]
    finally:
        await app_runner.cleanup()


async def drip_until_closed(port: int, first: bytes, drop: bytes) -> bytes:
    """Send ``first``, then ``drop`` every 50 ms until the gateway closes; what it answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(first)
    answer = b""
    try:
        async with asyncio.timeout(30):  # a liveness bound: the gateway must close well before
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(4096), 0.05)
                except TimeoutError:
                    writer.write(drop)
                    continue
                if not chunk:
                    return answer
                answer += chunk
    except (ConnectionResetError, BrokenPipeError):
        return answer
    finally:
        writer.close()


class TestSlowHeaders:
    async def test_a_connection_dripping_its_headers_is_closed(self, port: int) -> None:
        answer = await drip_until_closed(
            port, b"GET /v1/nodes HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-Drip: a\r\n"
        )
        assert answer == b""  # closed: no request was ever complete

    async def test_many_dripping_connections_are_all_closed(self, port: int) -> None:
        drips = [
            drip_until_closed(port, b"GET /healthz HTTP/1.1\r\n", b"X-Drip: a\r\n")
            for _ in range(50)
        ]
        assert await asyncio.gather(*drips) == [b""] * 50

    async def test_a_connection_that_never_sends_anything_is_closed(self, port: int) -> None:
        assert await drip_until_closed(port, b"", b"") == b""

    async def test_the_gateway_still_answers_after_the_drip(self, port: int) -> None:
        await drip_until_closed(port, b"GET /healthz HTTP/1.1\r\n", b"X-Drip: a\r\n")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        writer.close()


class TestSlowBodies:
    async def test_a_body_dripping_slower_than_the_limit_is_408(self, port: int) -> None:
        head = (
            b"POST /v1/accounts/content HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        answer = await drip_until_closed(port, head, b" ")
        status, _, rest = answer.partition(b"\r\n")
        assert status == b"HTTP/1.1 408 Request Timeout"
        error = orjson.loads(rest.partition(b"\r\n\r\n")[2])
        assert error["msg"] == f"the request body did not arrive within {BODY_TIMEOUT:g} seconds"


class TestHeaderLimits:
    async def test_a_header_longer_than_the_limit_is_refused(self, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
        status = await reader.readline()
        writer.close()
        assert status.split()[1] == b"400"

    async def test_more_headers_than_the_limit_are_refused(self, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
        status = await reader.readline()
        writer.close()
        assert status.split()[1] == b"400"
