"""``megam herk``: one herk node against RabbitMQ, with ``/metrics`` and ``/healthz``.

The CLI owns signals: it cancels :func:`serve`, which then stops the node gracefully (drain,
grace period, hand back) before it closes the broker connection.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from herk.acceptance import AcceptancePolicy
from herk.node import DEFAULT_HEARTBEAT_SECONDS, DEFAULT_SAMPLE_SECONDS, HerkNode
from megam import env, log
from megam.bus import Bus
from megam.bus.amqp import AmqpBus
from megam.config import DEFAULT_AMQP_URL, Settings
from megam.secrets import Sealer, load_or_create_key

logger = log.get("herk.main")

STOP_GRACE_VARIABLE = "MEGAM_HERK_STOP_GRACE"
HEARTBEAT_VARIABLE = "MEGAM_HERK_HEARTBEAT_SECONDS"
METRICS_HOST_VARIABLE = "MEGAM_HERK_METRICS_HOST"
SAMPLE_VARIABLE = "MEGAM_HERK_SAMPLE_SECONDS"
"""How often the local cloud's nodes are sampled for metrics; 0 turns sampling off."""


def build_node(settings: Settings, bus: Bus, sealer: Sealer) -> HerkNode:
    """A herk node configured from the environment: ``megam herk`` and ``megam up`` alike."""
    return HerkNode(
        settings,
        bus,
        sealer,
        heartbeat_seconds=env.seconds(HEARTBEAT_VARIABLE, DEFAULT_HEARTBEAT_SECONDS),
        policy=AcceptancePolicy.from_env(),
        sample_seconds=env.seconds(SAMPLE_VARIABLE, DEFAULT_SAMPLE_SECONDS),
    )


def metrics_host() -> str:
    """Where ``/metrics`` and ``/healthz`` listen: this machine only, unless
    ``MEGAM_HERK_METRICS_HOST`` opens them (e.g. ``0.0.0.0`` for a Prometheus elsewhere)."""
    return env.text(METRICS_HOST_VARIABLE, "127.0.0.1")


def stop_grace() -> float:
    return env.seconds(STOP_GRACE_VARIABLE, 30.0)


async def serve(settings: Settings) -> None:
    grace = stop_grace()
    sealer = Sealer(await asyncio.to_thread(load_or_create_key, settings.secret_key_file))
    bus = AmqpBus(settings.amqp_url or DEFAULT_AMQP_URL)
    await bus.connect()
    node = build_node(settings, bus, sealer)
    runner = web.AppRunner(health_app(node))
    try:
        await node.start()
        await runner.setup()
        host = metrics_host()
        site = web.TCPSite(runner, host, settings.herk_metrics_port)
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else settings.herk_metrics_port
        logger.info("herk.metrics", url=f"http://{host}:{port}/metrics")
        await asyncio.Event().wait()
    finally:
        # Cancellation got us here; the graceful stop must not be cut short by it.
        await asyncio.shield(_shutdown(node, runner, bus, grace))


async def _shutdown(node: HerkNode, runner: web.AppRunner, bus: AmqpBus, grace: float) -> None:
    try:
        await node.stop(grace=grace)
    finally:
        await runner.cleanup()
        await bus.close()


def health_app(node: HerkNode) -> web.Application:
    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler())

    async def healthz(_: web.Request) -> web.Response:
        beat = node.heartbeat()
        healthy = node.bus.connected and node.master is not None
        body = {
            "status": "ok" if healthy else "unavailable",
            "herk": beat.herk,
            "bus_connected": node.bus.connected,
            "workers": beat.workers,
            "busy": beat.busy,
            "inflight": beat.inflight,
            "draining": beat.draining,
        }
        return web.json_response(body, status=200 if healthy else 503)

    app.router.add_get("/healthz", healthz)
    return app
