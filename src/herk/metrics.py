"""Herk's Prometheus metrics, in the default registry (one ``/metrics`` per herk process).

Gauges move by ``inc``/``dec`` rather than ``set`` so that several herk nodes in one process
(``megam up``, tests) add up instead of overwriting each other. Worker utilisation over time is
``rate(megam_herk_worker_busy_seconds_total[1m]) / megam_herk_workers``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

JOBS = Counter(
    "megam_herk_jobs", "Jobs that reached an outcome, by type and outcome", ["type", "outcome"]
)
JOB_DURATION = Histogram(
    "megam_herk_job_duration_seconds",
    "Run time of a job attempt, from worker start to outcome",
    ["type"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, float("inf")),
)
QUEUE_WAIT = Histogram(
    "megam_herk_queue_wait_seconds",
    "Time from a request's creation to a worker starting it",
    ["type"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, float("inf")),
)
IN_FLIGHT = Gauge(
    "megam_herk_jobs_in_flight", "Jobs a herk node holds (running or waiting for a worker)"
)
WORKERS = Gauge("megam_herk_workers", "Worker actors alive")
BUSY_WORKERS = Gauge("megam_herk_workers_busy", "Worker actors running a job")
BUSY_SECONDS = Counter(
    "megam_herk_worker_busy_seconds", "Seconds worker actors spent running jobs (utilisation)"
)
ACCEPTED = Counter(
    "megam_herk_jobs_accepted",
    "Requests acknowledged on acceptance (long or not idempotent) rather than after the outcome",
    ["type"],
)
ACCEPTS_UNCONFIRMED = Counter(
    "megam_herk_accepts_unconfirmed",
    "Acceptances whose ack the broker could not be shown to have processed (job not started)",
)
DEAD_LETTERS = Counter(
    "megam_herk_dead_letters", "Requests sent to the dead-letter queue", ["kind"]
)
REDELIVERIES = Counter("megam_herk_redeliveries", "Requests the broker delivered again", ["type"])
RETRIES = Counter("megam_herk_retries", "Attempts re-published after a retryable failure", ["type"])
WORKER_REPLACEMENTS = Counter(
    "megam_herk_worker_replacements", "Worker actors replaced after a crash or a stuck job"
)
EVENTS_DROPPED = Counter(
    "megam_herk_events_dropped",
    "Events refused because the event buffer reached its disk limit (broker away)",
    ["kind"],
)
CANCELS_SEEN = Counter(
    "megam_herk_cancels_read", "Cancels read from the durable herk.cancels stream"
)


class _BrokerReconnects(Collector):
    """``megam_herk_broker_reconnects_total``: the reconnect counts of the buses herk nodes use."""

    def __init__(self) -> None:
        self.buses: weakref.WeakSet[object] = weakref.WeakSet()

    def collect(self) -> Iterator[CounterMetricFamily]:
        total = sum(int(getattr(bus, "reconnects", 0)) for bus in self.buses)
        yield CounterMetricFamily(
            "megam_herk_broker_reconnects",
            "Times the RabbitMQ connection was re-established",
            value=total,
        )


_RECONNECTS = _BrokerReconnects()
REGISTRY.register(_RECONNECTS)


def track_bus(bus: object) -> None:
    """Count ``bus.reconnects`` (AmqpBus has it; the embedded bus never reconnects)."""
    _RECONNECTS.buses.add(bus)
