"""What happens to a flight, told to whoever watches: the metrics, a test.

The master and its conclusion policies report each step of the flow once, as a :class:`Happened`;
they never touch a metric. :class:`MetricsObserver` turns those into herk's Prometheus metrics
(herk.metrics), so what is counted, and when, lives in one place.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

from herk import metrics


class Step(enum.StrEnum):
    REDELIVERED = "redelivered"
    HELD = "held"
    """A flight began: the node holds the request."""
    RELEASED = "released"
    """A flight ended, however it ended."""
    ACCEPTED = "accepted"
    UNCONFIRMED = "unconfirmed"
    """An acceptance (ack or claim) whose effect the broker could not be shown to have taken."""
    RUN_STARTED = "run_started"
    RUN_ENDED = "run_ended"
    WORKER_REPLACED = "worker_replaced"
    CONCLUDED = "concluded"
    """An attempt's outcome reached the conclusion (final, retried or handed back)."""
    RETRIED = "retried"
    DEAD_LETTERED = "dead_lettered"


@dataclasses.dataclass(frozen=True, slots=True)
class Happened:
    step: Step
    job_type: str = ""
    outcome: str = ""
    seconds: float = 0.0
    """Queue wait (run_started), busy time (run_ended) or run time (concluded)."""
    kind: str = ""
    """Of a dead letter: rejected, duplicate, exhausted."""


Observer = Callable[[Happened], None]


class MetricsObserver:
    """Feeds herk's metrics from the flow's steps; the only writer of the job metrics."""

    def __call__(self, event: Happened) -> None:
        step, job_type = event.step, event.job_type
        if step is Step.REDELIVERED:
            metrics.REDELIVERIES.labels(job_type).inc()
        elif step is Step.HELD:
            metrics.IN_FLIGHT.inc()
        elif step is Step.RELEASED:
            metrics.IN_FLIGHT.dec()
        elif step is Step.ACCEPTED:
            metrics.ACCEPTED.labels(job_type).inc()
        elif step is Step.UNCONFIRMED:
            metrics.ACCEPTS_UNCONFIRMED.inc()
        elif step is Step.RUN_STARTED:
            self._run_started(event)
        elif step is Step.RUN_ENDED:
            metrics.BUSY_WORKERS.dec()
            metrics.BUSY_SECONDS.inc(max(0.0, event.seconds))
        elif step is Step.WORKER_REPLACED:
            metrics.WORKER_REPLACEMENTS.inc()
        elif step is Step.CONCLUDED:
            metrics.JOBS.labels(job_type, event.outcome).inc()
            metrics.JOB_DURATION.labels(job_type).observe(event.seconds)
        elif step is Step.RETRIED:
            metrics.RETRIES.labels(job_type).inc()
        elif step is Step.DEAD_LETTERED:
            metrics.DEAD_LETTERS.labels(event.kind).inc()

    @staticmethod
    def _run_started(event: Happened) -> None:
        metrics.BUSY_WORKERS.inc()
        if event.seconds >= 0:  # negative: the request carried no creation time
            metrics.QUEUE_WAIT.labels(event.job_type).observe(event.seconds)
