"""The gateway's Prometheus metrics (one registry per process, served at ``/metrics``)."""

from __future__ import annotations

from typing import Any, Final

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS: Final = Counter(
    "megam_gateway_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_SECONDS: Final = Histogram(
    "megam_gateway_http_request_seconds",
    "Time to answer an HTTP request (live tails: until they end)",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
JOBS_PUBLISHED: Final = Counter(
    "megam_gateway_jobs_published_total",
    "Job messages confirmed by the broker (direct: during the HTTP request; outbox: later)",
    ["path"],
)
PUBLISH_FAILURES: Final = Counter(
    "megam_gateway_publish_failures_total", "Job messages left in the outbox after a failed publish"
)
OUTBOX_PENDING: Final = Gauge(
    "megam_gateway_outbox_pending", "Job messages stored but not yet confirmed by the broker"
)
EVENTS: Final = Counter(
    "megam_gateway_events_total",
    "Events consumed from gateway.events, by kind and outcome",
    ["kind", "outcome"],
)
LOG_LINES: Final = Counter(
    "megam_gateway_log_lines_stored_total", "Log lines stored (redelivered ones not counted)"
)
TAIL_FOLLOWERS: Final = Gauge("megam_gateway_tail_followers", "Open live log tails")


_HTTP_CHILDREN: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def observe_http(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request. The labelled children are looked up once per label set:
    ``labels()`` costs more than the increment itself on the hot path."""
    key = (method, route, str(status))
    children = _HTTP_CHILDREN.get(key)
    if children is None:
        children = _HTTP_CHILDREN[key] = (HTTP_REQUESTS.labels(*key), HTTP_SECONDS.labels(route))
    children[0].inc()
    children[1].observe(seconds)
