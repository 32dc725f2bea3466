"""The HTTP routes, one module per resource of Megam's /v1 table (docs/original.md §2.2)."""

from __future__ import annotations

from aiohttp import web

from gateway.routes import (
    accounts,
    api_doc,
    catalogue,
    cloud,
    cluster,
    definitions,
    health,
    jobs,
    lifecycle_requests,
    logs,
    marketplaces,
    node_metrics,
    node_update,
    nodes,
    requests,
    search,
    settings,
)

MODULES = (
    accounts,
    catalogue,
    cloud,
    nodes,
    node_update,
    requests,
    jobs,
    logs,
    node_metrics,
    search,
    cluster,
    settings,
    marketplaces,
    definitions,
    lifecycle_requests,
    health,
    api_doc,
)


def add_all(app: web.Application) -> None:
    for module in MODULES:
        app.add_routes(module.routes)
