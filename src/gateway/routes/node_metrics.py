"""A node's metric series (cpu load, memory, http requests …), as herk's events reported them:
raw samples for recent spans, 5-minute or hourly points (mean, low, high) for longer ones."""

from __future__ import annotations

import re
import time
from typing import Final

from aiohttp import web

from gateway import envelope, query, views
from gateway.errors import BadRequest
from gateway.routes.nodes import node_of_caller
from gateway.services import services
from gateway.store.records import ROLLUP_STEPS, Retention

routes = web.RouteTableDef()

METRIC_NAME: Final = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
STEPS: Final = {"raw": 0, **{str(step): step for step in ROLLUP_STEPS}}
RAW_SPAN: Final = 6 * 3600.0
"""Spans up to this long are shown as raw samples …"""
FIVE_MINUTE_SPAN: Final = 14 * 86400.0
"""… up to this long as 5-minute points, and longer ones as hourly points."""


@routes.get("/v1/nodes/{name}/metrics")
async def node_metrics(request: web.Request) -> web.Response:
    node = await node_of_caller(request)
    name = request.query.get("name") or None
    if name is not None and not METRIC_NAME.fullmatch(name):
        raise BadRequest(f"query parameter name must be a metric name, got {name!r}")
    since = query.epoch(request, "since")
    svc = services(request)
    step = _step(request, since, svc.options.retention)
    limit = query.integer(request, "limit", default=1000, low=1, high=svc.options.page_max)
    samples = await svc.store.metrics(
        node.account_id, node.name, name=name, since=since or 0.0, step=step, limit=limit or 1
    )
    return envelope.json(envelope.collection("MetricSample", map(views.metric_sample, samples)))


def _step(request: web.Request, since: float | None, retention: Retention) -> int:
    raw = request.query.get("step") or "auto"
    if raw != "auto":
        if raw not in STEPS:
            choices = ", ".join(["auto", *STEPS])
            raise BadRequest(f"query parameter step must be one of {choices}, got {raw!r}")
        return STEPS[raw]
    return auto_step(since, time.time(), retention)


def auto_step(since: float | None, now: float, retention: Retention) -> int:
    """The finest resolution that is still kept as far back as ``since`` and gives a chart of
    a few hundred points; without ``since``, the latest raw samples."""
    if since is None:
        return 0
    span = now - since
    for step, longest in ((0, RAW_SPAN), (ROLLUP_STEPS[0], FIVE_MINUTE_SPAN)):
        if span <= min(longest, retention.keeps(step)):
            return step
    return ROLLUP_STEPS[-1]
