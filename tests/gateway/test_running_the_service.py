"""Health, readiness and metrics routes, and ``serve`` as ``megam gateway`` runs it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from typing import Any

import aiohttp

from gateway.main import serve
from gateway.services import SERVICES
from megam.config import Settings


class TestOperationalRoutes:
    async def test_healthz_answers_while_the_process_lives(self, gateway: Any) -> None:
        response = await gateway.client.get("/healthz")
        assert (response.status, await response.json()) == (200, {"status": "ok"})

    async def test_readyz_reflects_store_and_broker(self, gateway: Any) -> None:
        ready = await gateway.client.get("/readyz")
        assert (await ready.json()) == {"status": "ok", "store": "ok", "bus": "ok"}
        await gateway.bus.close()
        not_ready = await gateway.client.get("/readyz")
        assert not_ready.status == 503
        assert (await not_ready.json())["bus"].startswith("unavailable")

    async def test_metrics_count_requests_by_route(self, gateway: Any) -> None:
        api = await gateway.tenant()
        await api.ok("/v1/nodes")
        text = await (await gateway.client.get("/metrics")).text()
        assert 'megam_gateway_http_requests_total{method="GET",route="/v1/nodes",status="200"}' in (
            text
        )
        assert "megam_gateway_outbox_pending" in text

    async def test_a_store_outage_is_a_503_in_megam_style(self, gateway: Any) -> None:
        api = await gateway.tenant()
        await gateway.client.app[SERVICES].store.close()
        response = await api.get("/v1/nodes")
        assert response.status == 503
        error = await response.json()
        assert (error["json_claz"], error["msg"]) == ("Megam::Error", "the store is unavailable")
        ready = await gateway.client.get("/readyz")
        assert ready.status == 503
        assert (await ready.json())["store"].startswith("unavailable")

    async def test_a_503_says_when_to_try_again(self, gateway: Any) -> None:
        api = await gateway.tenant()
        await gateway.client.app[SERVICES].store.close()
        response = await api.get("/v1/nodes")
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"

    async def test_every_response_carries_its_request_id(self, gateway: Any) -> None:
        response = await gateway.client.get("/healthz")
        assert len(response.headers["X-Request-Id"]) == 32


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_serve_runs_on_rabbitmq_until_cancelled(amqp_url: str, tmp_path: Path) -> None:
    port = free_port()
    settings = Settings.from_env(
        data_dir=tmp_path,
        amqp_url=amqp_url,
        gateway_port=port,
        uid_url=f"http://127.0.0.1:{free_port()}",  # nobody listens: ids are unavailable
    )
    server = asyncio.create_task(serve(settings))
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(20):
                while True:
                    if server.done():
                        server.result()  # it stopped by itself: show why
                    with contextlib.suppress(aiohttp.ClientConnectionError):
                        async with http.get(f"{base}/readyz") as ready:
                            if ready.status == 200:
                                break
                    await asyncio.sleep(0.05)
            async with http.post(
                f"{base}/v1/accounts/content", json={"email": "s@example.com"}
            ) as response:
                assert response.status == 503
                assert (await response.json())["msg"] == "UID not found (or) server unavailable"
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
    assert (tmp_path / "megam.db").exists()
    assert (tmp_path / "secret.key").exists()
