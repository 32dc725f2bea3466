"""Nothing is lost when the broker is down: jobs wait in the outbox and are published later."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yarl

from gateway.options import GatewayOptions
from megam import topology, wire
from megam.bus.amqp import AmqpBus


async def crowded_launch(api: Any, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    response = await api.post("/v1/nodes/content", {"node_name": name, "predefcloud": "local"})
    assert response.status == 201  # stored: the client need not send it again
    info, error = await response.json()
    return info, error


class TestOnTheEmbeddedBus:
    async def test_a_launch_during_an_outage_is_published_once_the_bus_is_back(
        self, gateway: Any, eventually: Any, collector: Any
    ) -> None:
        api = await gateway.tenant()
        await gateway.bus.close()
        info, error = await crowded_launch(api, "patient.local")
        assert (info["code"], info["msg_type"]) == (201, "info")
        assert (error["code"], error["msg_type"]) == (503, "error")
        assert error["msg"] == "queue servers are crowded"
        waiting = await api.job(info["job_id"])
        assert (waiting["state"], waiting["published"]) == ("queued", False)
        assert waiting["reason"].startswith("not yet handed to the queue")

        await gateway.bus.connect()
        herk_side = collector()
        await gateway.bus.consume(topology.HERK_REQUESTS.name, herk_side, prefetch=10)
        [delivery] = await herk_side.wait_for(1)
        request = wire.decode(delivery.body, wire.JobRequest)
        assert (request.job_id, request.node, request.type) == (
            info["job_id"],
            "patient.local",
            "local.create",
        )

        async def published() -> Any:
            job = await api.job(info["job_id"])
            return job if job["published"] else None

        job = await eventually(published)
        assert job["reason"].startswith("handed to the queue after")
        assert [h["reason"][:20] for h in job["history"]] == [
            "accepted by the gate",
            "not yet handed to th",
            "handed to the queue ",
        ]

    async def test_a_delete_during_an_outage_waits_too(self, gateway: Any) -> None:
        api = await gateway.tenant()
        await api.launch("later.local")
        await gateway.bus.close()
        response = await api.post(
            "/v1/requests/content", {"node_name": "later.local", "req_type": "delete"}
        )
        assert response.status == 201
        assert [m["code"] for m in await response.json()] == [201, 503]


class TcpProxy:
    """A TCP relay we can cut and restore, standing between the gateway and RabbitMQ."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


@pytest.fixture
async def proxied(amqp_url: str) -> AsyncIterator[tuple[TcpProxy, str]]:
    url = yarl.URL(amqp_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5672))
    await proxy.start()
    yield proxy, str(url.with_port(proxy.port))
    with contextlib.suppress(Exception):
        await proxy.cut()


class TestOnRabbitMQ:
    async def test_jobs_stored_while_rabbitmq_is_unreachable_are_published_after(
        self,
        aiohttp_client: Any,
        make_app: Any,
        proxied: Any,
        amqp_url: str,
        eventually: Any,
        collector: Any,
        signed: Any,
    ) -> None:
        proxy, url = proxied
        bus = AmqpBus(url, publish_timeout=0.5)
        await bus.connect()
        options = GatewayOptions(
            publish_wait_seconds=0.5, outbox_interval_seconds=0.1, outbox_max_backoff_seconds=0.5
        )
        client = await aiohttp_client(make_app(bus, options))
        onboarded = await client.post("/v1/accounts/content", json={"email": "r@x.io"})
        account = await onboarded.json()
        api = signed(client, account["email"], account["api_key"])
        await api.add_local_cloud()
        await proxy.cut()
        info, error = await crowded_launch(api, "outage.local")
        assert error["msg"] == "queue servers are crowded"
        await proxy.start()  # same port: the robust connection comes back by itself

        watcher = AmqpBus(amqp_url)
        await watcher.connect()
        try:
            herk_side = collector()
            await watcher.consume(topology.HERK_REQUESTS.name, herk_side, prefetch=10)
            [delivery] = await herk_side.wait_for(1, timeout=30)
            assert delivery.message_id == info["job_id"]
            assert wire.decode(delivery.body, wire.JobRequest).node == "outage.local"

            async def published() -> bool:
                return (await api.job(info["job_id"]))["published"]

            await eventually(published, timeout=30)
        finally:
            await watcher.close()
            await client.close()
            await bus.close()
