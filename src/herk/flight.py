"""A flight: one job attempt a herk node holds, from its delivery to its settlement.

Its state is one value, :class:`Phase`, that only moves forward: a flight waits (for its backoff,
a worker), may be accepted (acked before it starts: herk.acceptance), runs, may run long, and has
run. Whether it was accepted, has started or runs long is read from the phase, not kept beside
it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import time

from herk.admission import Job
from herk.control import JobControl, StopReason
from megam import wire
from megam.bus import Delivery


class Phase(enum.IntEnum):
    WAITING = 1
    """Held, not started: waiting out a retry's backoff, or for a free worker."""
    ACCEPTED = 2
    """Acknowledged on acceptance: the broker will not redeliver it, this node answers for it."""
    RUNNING = 3
    """Its worker was told to run it."""
    LONG = 4
    """Running for longer than the master's LONG_JOB."""
    RAN = 5
    """Its run is over; the outcome is being concluded."""


class PhaseError(RuntimeError):
    """A flight was asked to move backwards (a bug in the flow)."""


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
    phase: Phase = Phase.WAITING
    started_at: float = 0.0
    """When it was accepted or its worker told to run it (epoch s); 0 before either."""

    def move(self, phase: Phase, *, at: float | None = None) -> None:
        if phase < self.phase:
            raise PhaseError(f"flight of {self.job.job_id}: {self.phase.name} → {phase.name}")
        self.phase = phase
        if at is not None:
            self.started_at = at

    def stop(self, reason: StopReason, detail: str = "") -> None:
        self.control.request_stop(reason, detail)
        self.stopped.set()

    @property
    def accepted(self) -> bool:
        """The request is acknowledged: only a flight that acks on acceptance ever is."""
        return self.acks_on_accept and self.phase >= Phase.ACCEPTED

    @property
    def started(self) -> bool:
        """Accepted or running: no longer something to hand back as never begun."""
        return self.phase >= Phase.ACCEPTED

    @property
    def long(self) -> bool:
        return self.phase is Phase.LONG

    @property
    def not_before(self) -> float:
        """Epoch seconds."""
        raw = self.delivery.headers.get(wire.NOT_BEFORE_HEADER)
        return raw / 1000 if isinstance(raw, int) else 0.0

    def held_job(self) -> wire.HeldJob:
        request = self.job.request
        return wire.HeldJob(
            job_id=request.job_id, attempt=request.attempt, accepted=self.accepted, since=self.since
        )
