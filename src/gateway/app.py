"""The gateway application: routes, middlewares, and the background work tied to its lifetime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from gateway import auth, middleware, routes
from gateway.events import EventConsumer
from gateway.options import GatewayOptions
from gateway.publisher import JobPublisher
from gateway.services import SERVICES, Services
from gateway.store import store_for_url
from gateway.tail import Notifier
from megam import log, topology
from megam.bus import Bus, BusError
from megam.config import Settings
from megam.ids import IdSource
from megam.secrets import Sealer

logger = log.get("gateway.app")


def create_app(
    settings: Settings,
    bus: Bus,
    ids: IdSource,
    sealer: Sealer,
    store_url: str | None = None,
    *,
    options: GatewayOptions | None = None,
) -> web.Application:
    """The gateway on a connected ``bus``. Starting the app opens the store, declares the
    topology, and starts the event consumer and the outbox; cleaning it up stops them."""
    options = options or GatewayOptions.from_env()
    store = store_for_url(store_url or settings.store_url)
    app = web.Application(
        middlewares=[middleware.request_context, auth.authenticate],
        client_max_size=options.max_body_bytes,
    )
    app[SERVICES] = Services(
        settings=settings,
        options=options,
        store=store,
        bus=bus,
        ids=ids,
        sealer=sealer,
        notifier=Notifier(),
        publisher=JobPublisher(store, bus, options),
    )
    routes.add_all(app)
    app.cleanup_ctx.append(_background)
    app.on_shutdown.append(_end_live_tails)
    return app


async def _background(app: web.Application) -> AsyncIterator[None]:
    svc = app[SERVICES]
    await svc.store.open()
    consumer = EventConsumer(svc.store, svc.bus, svc.notifier)
    outbox: asyncio.Task[None] | None = None
    subscription = None
    try:
        # herk's queues too: a job published before any herk started must wait, not bounce
        await svc.bus.declare(topology.EXCHANGES, topology.ALL_QUEUES)
        subscription = await consumer.start(svc.options.event_prefetch)
        outbox = asyncio.create_task(svc.publisher.run(), name="gateway-outbox")
        logger.info("gateway.started")
        yield
    finally:
        consumer.stop()
        if subscription is not None:
            with contextlib.suppress(BusError):
                await subscription.cancel()
        if outbox is not None:
            outbox.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await outbox
        await svc.store.close()
        logger.info("gateway.stopped")


async def _end_live_tails(app: web.Application) -> None:
    # before aiohttp waits for running handlers: live tails would otherwise hold shutdown
    app[SERVICES].notifier.close()
