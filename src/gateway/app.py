"""The gateway application: routes, middlewares, and the background work tied to its lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, Final

from aiohttp import web, web_urldispatcher

from gateway import auth, middleware, routes
from gateway.cluster_view import ClusterView
from gateway.console import add_console_routes
from gateway.events import EventConsumer
from gateway.node_views import NodeViews
from gateway.options import GatewayOptions
from gateway.publisher import JobPublisher
from gateway.reconciler import Reconciler
from gateway.services import SERVICES, Services
from gateway.store import StoreError, store_for_url
from gateway.tail import Notifier
from megam import log, topology
from megam.bus import Bus, BusError
from megam.config import Settings
from megam.ids import IdSource
from megam.secrets import Sealer

logger = log.get("gateway.app")

MAX_LINE_BYTES: Final = 8190
"""The request line and each header line: longer is refused by aiohttp's parser with a 400."""
MAX_HEADERS: Final = 100


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
    node_views = NodeViews()
    store = node_views.watching(store_for_url(store_url or settings.store_url, options.retention))
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
        cluster=ClusterView(store, bus, options),
        node_views=node_views,
    )
    _answer_expect_in_megam_words()
    routes.add_all(app)
    add_console_routes(app)
    app.cleanup_ctx.append(_background)
    app.on_shutdown.append(_end_live_tails)
    return app


def _answer_expect_in_megam_words() -> None:
    # aiohttp answers Expect before any middleware runs, with the handler its route was created
    # with; the default one echoes the header's value, which fails (a 500) when the value is
    # not UTF-8. Routes are created by their modules and, for a path no route serves (404,
    # 405), by aiohttp on each request, all with the module's default: so replace the default.
    web_urldispatcher._default_expect_handler = middleware.expect_handler  # type: ignore[attr-defined]


def server_limits(options: GatewayOptions) -> dict[str, Any]:
    """What aiohttp's HTTP server enforces before any handler runs, as ``AppRunner`` arguments."""
    return {
        # aiohttp closes a connection whose next request has not fully arrived when the
        # keep-alive timer fires, which is set when it opens and after each answer: this
        # bounds the wait for a request's headers (slow-drip clients), not only idleness.
        "keepalive_timeout": options.header_timeout_seconds,
        "max_line_size": MAX_LINE_BYTES,
        "max_field_size": MAX_LINE_BYTES,
        "max_headers": MAX_HEADERS,
    }


def runner(app: web.Application, **kwargs: Any) -> web.AppRunner:
    """The runner of every way the gateway is served (``megam gateway``, ``megam up``)."""
    return web.AppRunner(app, **server_limits(app[SERVICES].options), **kwargs)


async def _background(app: web.Application) -> AsyncIterator[None]:
    svc = app[SERVICES]
    await svc.store.open()
    consumer = EventConsumer(svc.store, svc.bus, svc.notifier)
    reconciler = Reconciler(svc.store, svc.bus, svc.cluster, svc.notifier, svc.options)
    tasks: list[asyncio.Task[None]] = []
    subscription = None
    try:
        # herk's queues too: a job published before any herk started must wait, not bounce
        await svc.bus.declare(topology.EXCHANGES, topology.ALL_QUEUES)
        subscription = await consumer.start(svc.options.event_prefetch)
        tasks.append(asyncio.create_task(svc.publisher.run(), name="gateway-outbox"))
        tasks.append(asyncio.create_task(reconciler.run(), name="gateway-reconciler"))
        tasks.append(asyncio.create_task(_purge_forever(svc), name="gateway-retention"))
        tasks.append(asyncio.create_task(_roll_up_forever(svc), name="gateway-rollups"))
        logger.info("gateway.started")
        yield
    finally:
        consumer.stop()
        if subscription is not None:
            with contextlib.suppress(BusError):
                await subscription.cancel()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await svc.store.close()
        logger.info("gateway.stopped")


async def _purge_forever(svc: Services) -> None:
    """Retention: old log lines, long-finished jobs and old metric points go (MongoDB's TTL
    indexes drop lines and jobs too)."""
    while True:
        try:
            purged = await svc.store.purge(time.time())
            if purged.lines or purged.jobs or purged.samples:
                logger.info(
                    "retention.purged",
                    lines=purged.lines,
                    jobs=purged.jobs,
                    metric_points=purged.samples,
                )
        except StoreError as exc:
            logger.warning("retention.store_unavailable", error=str(exc))
        await asyncio.sleep(svc.options.purge_interval_seconds)


async def _roll_up_forever(svc: Services) -> None:
    """Downsampling: new metric samples join their 5-minute and hourly points."""
    while True:
        try:
            await svc.store.roll_up(time.time())
        except StoreError as exc:
            logger.warning("rollup.store_unavailable", error=str(exc))
        await asyncio.sleep(svc.options.rollup_interval_seconds)


async def _end_live_tails(app: web.Application) -> None:
    # before aiohttp waits for running handlers: live tails would otherwise hold shutdown
    app[SERVICES].notifier.close()
