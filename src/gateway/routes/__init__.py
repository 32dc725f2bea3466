"""The HTTP routes, one module per resource of Megam's /v1 table (megam-original.md §2.2)."""

from __future__ import annotations

from aiohttp import web

from gateway.routes import (
    accounts,
    api_doc,
    catalogue,
    cloud,
    cluster,
    health,
    logs,
    node_metrics,
    nodes,
    requests,
    search,
)

MODULES = (
    accounts,
    catalogue,
    cloud,
    nodes,
    requests,
    logs,
    node_metrics,
    search,
    cluster,
    health,
    api_doc,
)


def add_all(app: web.Application) -> None:
    for module in MODULES:
        app.add_routes(module.routes)
