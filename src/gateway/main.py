"""``megam gateway``: the gateway alone, on RabbitMQ, with ids from the uid service."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.app import create_app, runner
from gateway.options import GatewayOptions
from megam import log
from megam.bus.amqp import AmqpBus
from megam.config import DEFAULT_AMQP_URL, DEFAULT_UID_PORT, Settings
from megam.ids import RemoteIdSource
from megam.secrets import Sealer, load_or_create_key

logger = log.get("gateway.main")


async def serve(settings: Settings) -> None:
    """Run until cancelled (the CLI cancels on SIGTERM/SIGINT), then stop cleanly."""
    options = GatewayOptions.from_env()
    bus = AmqpBus(settings.amqp_url or DEFAULT_AMQP_URL)
    ids = RemoteIdSource(settings.uid_url or f"http://127.0.0.1:{DEFAULT_UID_PORT}")
    sealer = Sealer(load_or_create_key(settings.secret_key_file))
    await bus.connect()
    app_runner = runner(create_app(settings, bus, ids, sealer, options=options))
    try:
        await app_runner.setup()
        site = web.TCPSite(app_runner, options.host, settings.gateway_port)
        await site.start()
        logger.info("gateway.listening", host=options.host, port=settings.gateway_port)
        await asyncio.Event().wait()
    finally:
        await app_runner.cleanup()
        await ids.close()
        await bus.close()
