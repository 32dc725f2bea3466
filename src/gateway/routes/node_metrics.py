"""A node's metric samples over time (cpu load, http requests …), as herk's events reported them."""

from __future__ import annotations

import re
from typing import Final

from aiohttp import web

from gateway import envelope, views
from gateway.errors import BadRequest
from gateway.routes.nodes import node_of_caller
from gateway.services import services

routes = web.RouteTableDef()

METRIC_NAME: Final = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


@routes.get("/v1/nodes/{name}/metrics")
async def node_metrics(request: web.Request) -> web.Response:
    node = await node_of_caller(request)
    name = request.query.get("name") or None
    if name is not None and not METRIC_NAME.fullmatch(name):
        raise BadRequest(f"query parameter name must be a metric name, got {name!r}")
    try:
        since = float(request.query.get("since") or 0)
    except ValueError:
        raise BadRequest("query parameter since must be seconds since the epoch") from None
    samples = await services(request).store.metrics(
        node.account_id, node.name, name=name, since=since
    )
    return envelope.json(envelope.collection("MetricSample", map(views.metric_sample, samples)))
