"""A flight: one job attempt a herk node holds, from its delivery to its settlement."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from herk.admission import Job
from herk.control import JobControl, StopReason
from megam import wire
from megam.bus import Delivery

NOT_BEFORE_HEADER = "x-megam-not-before-ms"
"""On a retried attempt: epoch milliseconds before which it must not start (its backoff). An
integer: AMQP carries a Python float as a 32-bit one, minutes off for an epoch time."""


@dataclasses.dataclass(eq=False)
class Flight:
    job: Job
    delivery: Delivery
    acks_on_accept: bool
    """Decided at admission (herk.acceptance): ack before the run, or after the outcome."""
    control: JobControl = dataclasses.field(default_factory=JobControl)
    stopped: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    finished: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    since: float = dataclasses.field(default_factory=time.time)
    accepted: bool = False
    """The request is acknowledged: the broker will not redeliver it, this node answers for it."""
    started_at: float = 0.0
    """When the worker was told to run it (epoch s); 0 while it has not started."""
    long: bool = False
    """It has run for longer than the master's LONG_JOB."""

    def stop(self, reason: StopReason, detail: str = "") -> None:
        self.control.request_stop(reason, detail)
        self.stopped.set()

    @property
    def started(self) -> bool:
        return self.started_at > 0

    @property
    def not_before(self) -> float:
        """Epoch seconds."""
        raw = self.delivery.headers.get(NOT_BEFORE_HEADER)
        return raw / 1000 if isinstance(raw, int) else 0.0

    def held_job(self) -> wire.HeldJob:
        request = self.job.request
        return wire.HeldJob(
            job_id=request.job_id, attempt=request.attempt, accepted=self.accepted, since=self.since
        )
