"""``megam up``: gateway + herk + uid in one process, on the embedded bus and SQLite by default."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from megam import log
from megam.bus import Bus, connect_bus
from megam.config import Settings
from megam.ids import LocalIdSource
from megam.secrets import Sealer, load_or_create_key

logger = log.get("megam.up")


@contextlib.asynccontextmanager
async def serve_app(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """Run ``app`` on ``host:port`` (0 = any free port); yields the bound port."""
    from gateway.app import runner as gateway_runner  # the gateway's HTTP limits

    runner = gateway_runner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only through the server
        bound = server.sockets[0].getsockname()[1] if server else port  # type: ignore[union-attr]
        yield bound
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def connected_bus(settings: Settings) -> AsyncIterator[Bus]:
    bus = connect_bus(settings.amqp_url, settings.data_dir)
    await bus.connect()
    try:
        yield bus
    finally:
        await bus.close()


async def up(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    operators: frozenset[str] = frozenset(),
    after_start: Callable[[str], Awaitable[None]] | None = None,
) -> None:
    """Run until cancelled; ``operators`` join the gateway's MEGAM_ADMIN_EMAILS, and
    ``after_start`` (the ready block, the demo) runs once all is up: its failure is logged and
    the services keep running."""
    from gateway.app import create_app
    from gateway.options import GatewayOptions
    from herk.main import build_node, stop_grace
    from uid.main import start as start_uid

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sealer = Sealer(load_or_create_key(settings.secret_key_file))
    async with connected_bus(settings) as bus:
        uid = await start_uid(settings, host=host)  # leases the worker id the gateway uses too
        try:
            herk = build_node(settings, bus, sealer)
            options = GatewayOptions.from_env()
            options = dataclasses.replace(options, admin_emails=options.admin_emails | operators)
            gateway = create_app(
                settings,
                bus,
                LocalIdSource(uid.generator),
                sealer,
                store_url=settings.store_url,
                options=options,
            )
            async with serve_app(gateway, host, settings.gateway_port) as port:
                await herk.start()
                url = f"http://{host}:{port}"
                logger.info(
                    "megam.up",
                    gateway=url,
                    uid=f"http://{host}:{uid.port}",
                    bus="rabbitmq" if settings.amqp_url else "embedded",
                    store=settings.store_url,
                    workers=settings.workers,
                    data_dir=str(settings.data_dir),
                    operators=sorted(options.admin_emails),
                )
                try:
                    if after_start is not None:
                        await _survive(after_start, url)
                    await asyncio.Event().wait()
                finally:
                    await herk.stop(grace=stop_grace())
        finally:
            await uid.stop()


async def _survive(step: Callable[[str], Awaitable[None]], url: str) -> None:
    """Run ``step``; whatever it raises is logged, and the services stay up."""
    try:
        await step(url)
    except Exception as exc:
        logger.error("megam.after_start_failed", error=str(exc), exc_info=True)
