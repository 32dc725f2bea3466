"""The master: the flow of one request delivery, admit → acquire a worker → accept → run →
conclude.

The order of the steps is the delivery guarantee (docs/herk.md, "Delivery semantics"):

* ack after the outcome (idempotent jobs that end well within the broker's consumer timeout): the
  request is acknowledged only once its outcome is safely recorded (terminal status confirmed
  into the durable ``gateway.events``, or dead-lettered, handed back, or its next attempt
  published). A herk node that dies loses nothing: the broker redelivers, and the job runs again.
* ack on acceptance (jobs that are not idempotent, or may outlive the consumer timeout): the
  ``running`` status is confirmed, then the ack is confirmed, and only then does the process
  start. A node that dies before that never started the job, so its redelivery is safe; one that
  dies after it is not redelivered, and its heartbeats told who held the job. A job that is not
  idempotent is also claimed in the job ledger between the ack and the start: a second copy of
  its request, here or on another node, finds the claim and is dead-lettered, not run.

What is decided once an attempt ended (final, retry, hand back, dead letter) is herk.conclusion;
getting and watching a worker is herk.supervision; what is counted is herk.observer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from herk import ledger
from herk.acceptance import AcceptancePolicy
from herk.admission import Rejection, admit
from herk.bridge import LoopBridge
from herk.catalogue import Catalogue
from herk.conclusion import Concluder, attempt_key, settle
from herk.control import StopReason
from herk.events import RUNNING_SEQ, EventPublisher, RequestPublisher
from herk.flight import Flight, Phase
from herk.memory import BoundedMemory
from herk.observer import Happened, MetricsObserver, Observer, Step
from herk.outcome import Outcome
from herk.pool import Slot, WorkerPool
from herk.reliably import Reliably
from herk.supervision import Supervisor
from megam import log, wire
from megam.bus import Bus, BusError, Delivery
from megam.secrets import Sealer
from megam.wire import JobState

logger = log.get("herk.master")

RUNNING_DELAY = 0.02
"""A job held until its outcome reports ``running`` only if it is still running after this long:
most benchmark-sized jobs end sooner, and their terminal event carries ``started_at`` instead."""
LONG_JOB = 1.0
"""A job running longer than this makes its node stop taking requests beyond its free workers."""


class Master:
    def __init__(
        self,
        name: str,
        bus: Bus,
        sealer: Sealer,
        catalogue: Catalogue,
        pool: WorkerPool,
        events: EventPublisher,
        bridge: LoopBridge,
        policy: AcceptancePolicy | None = None,
        on_capacity_change: Callable[[], object] = lambda: None,
        on_accepted: Callable[[], Awaitable[None]] | None = None,
        observe: Observer | None = None,
    ) -> None:
        self.name = name
        self._sealer = sealer
        self._catalogue = catalogue
        self._events = events
        self._policy = policy or AcceptancePolicy()
        self._on_capacity_change = on_capacity_change
        self._on_accepted = on_accepted
        self._observe = MetricsObserver() if observe is None else observe
        self._ledger = ledger.JobLedger(bus, name, self._policy.claim_keep)
        self._reliably = Reliably()
        self._workers = Supervisor(pool, bridge, self._observe)
        requests = RequestPublisher(bus, name)
        outcomes: BoundedMemory[Outcome] = BoundedMemory(10_000)
        self._conclusions = Concluder(events, requests, self._reliably, self._observe, outcomes)
        self.flights: dict[str, Flight] = {}
        self.unrecorded: dict[str, wire.HeldJob] = {}
        """Accepted jobs whose terminal status could not be published: still ours to answer for."""
        self.long_running = 0
        """Jobs here running for longer than LONG_JOB."""
        self.cancels: BoundedMemory[str] = BoundedMemory(100_000)
        self._accepting = True
        self._idle = asyncio.Event()
        self._idle.set()

    # -- the request flow ------------------------------------------------------------------

    async def handle(self, delivery: Delivery) -> None:
        try:
            job = admit(delivery.body, self._catalogue, self._sealer)
        except Rejection as rejection:
            await self._conclusions.reject(delivery, rejection)
            return
        if delivery.redelivered:
            self._observe(Happened(Step.REDELIVERED, job.request.type))
        flight = Flight(job, delivery, self._policy.acks_on_accept(job.definition))
        if not await self._answer_without_running(flight):
            await self._fly(flight)

    async def _answer_without_running(self, flight: Flight) -> bool:
        job = flight.job
        held = self.flights.get(job.job_id)
        if held is not None:
            # The broker redelivered a job that runs here (our channel was lost): answer this
            # delivery with that run's outcome instead of starting a second run.
            await held.finished.wait()
        remembered = self._conclusions.outcomes.get(attempt_key(job))
        if remembered is not None:
            if remembered.state.terminal:  # else it was retried: its next attempt is queued
                await self._conclusions.record(job, remembered)
            await settle(flight.delivery.ack())
            return True
        requested_by = self.cancels.get(job.job_id)
        if requested_by is not None:
            await self._conclusions.final(flight, _cancelled_before_start(requested_by))
            return True
        if not self._accepting:
            await self._conclusions.hand_back(flight)
            return True
        return False

    async def _fly(self, flight: Flight) -> None:
        job = flight.job
        self.flights[job.job_id] = flight
        self._idle.clear()
        self._observe(Happened(Step.HELD, job.request.type))
        try:
            outcome = await self._execute(flight)
            if outcome is not None:
                await self._conclusions.conclude(flight, outcome)
        except BaseException:
            if flight.accepted:  # the broker forgot it: keep telling who holds it
                self.unrecorded[job.job_id] = flight.held_job()
            raise
        finally:
            flight.finished.set()
            del self.flights[job.job_id]
            self._observe(Happened(Step.RELEASED, job.request.type))
            if flight.accepted:
                self._on_capacity_change()
            if not self.flights:
                self._idle.set()

    async def _execute(self, flight: Flight) -> Outcome | None:
        """The attempt's outcome; None if it did not start and there is nothing to record (its
        acceptance failed, or it was handed back for want of a free worker)."""
        if not await _until_due(flight, self._policy.safe_hold):
            return _stopped_before_start(flight)
        slot = await self._workers.acquire(flight)
        if slot is None:
            if flight.stopped.is_set():
                return _stopped_before_start(flight)
            await self._conclusions.hand_back(flight)  # no worker came free: another node may
            return None
        if flight.acks_on_accept and not await self._accept(flight):
            await self._workers.release(slot)
            return None
        if flight.stopped.is_set():  # cancelled or stopped while it was being accepted
            await self._workers.release(slot)
            return _stopped_before_start(flight)
        return await self._run(flight, slot)

    async def _accept(self, flight: Flight) -> bool:
        """Record ``running``, then acknowledge the request with the broker's proof: after this,
        the broker will not redeliver it, so it may start. False: it must not start."""
        job = flight.job
        started_at = time.time()
        await self._reliably(
            lambda: self._events.status(
                job.identity, JobState.RUNNING, seq=RUNNING_SEQ, started_at=started_at
            )
        )
        try:
            await flight.delivery.ack(confirmed=True)
        except BusError as exc:
            # Unknown whether the broker took the ack. Not running would lose the job if it did
            # (its record stuck at `running`), so it runs: if the broker redelivers it instead,
            # the copy of a job that is not idempotent finds the claim below and is not run,
            # and an idempotent one may run again (docs/herk.md, "the one window").
            self._observe(Happened(Step.UNCONFIRMED, job.request.type))
            logger.warning("job.accept_unconfirmed", job_id=job.job_id, error=str(exc))
        # Claimed after the ack, not before: a claim that a redelivery could find would turn
        # the redelivery of a job that never started into a duplicate.
        if not job.definition.idempotent and not await self._claim(flight):
            return False
        flight.move(Phase.ACCEPTED, at=started_at)
        self._observe(Happened(Step.ACCEPTED, job.request.type))
        self._on_capacity_change()  # its worker no longer counts against the prefetch
        if self._on_accepted is not None:
            # The broker forgot the request: a heartbeat says who holds it before it starts.
            await self._on_accepted()
        return True

    async def _claim(self, flight: Flight) -> bool:
        """Claim the one run of a job that is not idempotent. False: a copy of its request was
        accepted before, here or on another node, and this one must not start. It gets no status
        event (the job has its own, from the first copy), only a dead letter with the reason."""
        job = flight.job
        holder = self._ledger.new_holder()
        try:
            first = await self._reliably(lambda: self._ledger.claim(job.job_id, holder))
        except BusError as exc:  # stopping while the broker is away: unknown, so not run
            self._observe(Happened(Step.UNCONFIRMED, job.request.type))
            logger.warning("job.claim_unconfirmed", job_id=job.job_id, error=str(exc))
            return False
        if first is None:
            return True
        logger.warning("job.duplicate", job_id=job.job_id, first=first)
        reason = ledger.duplicate_reason(first)
        await self._conclusions.dead_letter(flight.delivery, reason, kind="duplicate")
        return False

    async def _run(self, flight: Flight, slot: Slot) -> Outcome:
        request = flight.job.request
        flight.move(Phase.RUNNING, at=None if flight.started else time.time())
        wait = max(0.0, flight.started_at - request.created_at) if request.created_at else -1.0
        self._observe(Happened(Step.RUN_STARTED, request.type, seconds=wait))
        done = self._workers.start(flight, slot)
        running = not done.done()
        held = running and not flight.accepted
        announcing = _Announcement(self._events, flight) if held else None
        loop = asyncio.get_running_loop()
        long = loop.call_later(LONG_JOB, self._runs_long, flight) if running else None
        try:
            return await self._workers.watch(flight, slot, done)
        finally:
            if long is not None:
                long.cancel()
            if flight.long:
                self.long_running -= 1
                self._on_capacity_change()
            flight.move(Phase.RAN)
            busy = time.time() - flight.started_at
            self._observe(Happened(Step.RUN_ENDED, request.type, seconds=busy))
            if announcing is not None:
                await announcing.settle()

    def _runs_long(self, flight: Flight) -> None:
        flight.move(Phase.LONG)
        self.long_running += 1
        self._on_capacity_change()

    # -- steering from the control exchange and from the node -----------------------------

    def cancel(self, job_id: str, requested_by: str = "") -> bool:
        """Cancel a job: stop it if held here, and remember it so a queued copy never starts."""
        self.cancels.remember(job_id, requested_by)
        flight = self.flights.get(job_id)
        if flight is None:
            return False
        flight.stop(StopReason.CANCELLED, requested_by)
        return True

    def stop_accepting(self) -> None:
        """Drain: a request that arrives from now on is handed back."""
        self._accepting = False

    def hand_back_waiting(self, detail: str) -> None:
        """Give up the jobs not begun (waiting for a worker or a retry's backoff); what runs or
        was accepted runs to its end."""
        for flight in self.flights.values():
            if not flight.started:
                flight.stop(StopReason.SHUTDOWN, detail)

    def stop_all(self, detail: str) -> None:
        for flight in self.flights.values():
            flight.stop(StopReason.SHUTDOWN, detail)

    def give_up_on_broker(self) -> None:
        """Shutting down: a publish that fails now raises instead of being tried again."""
        self._reliably.giving_up = True

    async def wait_idle(self, seconds: float) -> bool:
        """True once no flight is held here; False if some still are after ``seconds``."""
        try:
            await asyncio.wait_for(self._idle.wait(), seconds)
        except TimeoutError:
            return False
        return True

    @property
    def longest_kill_grace(self) -> float:
        return max((f.job.definition.kill_grace for f in self.flights.values()), default=0.0)

    def in_flight(self) -> list[str]:
        return sorted(self.flights)

    @property
    def accepted_running(self) -> int:
        return sum(1 for flight in self.flights.values() if flight.accepted)

    def held_jobs(self) -> list[wire.HeldJob]:
        held = [flight.held_job() for flight in self.flights.values()]
        return held + [job for key, job in self.unrecorded.items() if key not in self.flights]


class _Announcement:
    """The delayed ``running`` of a job held until its outcome (see RUNNING_DELAY)."""

    def __init__(self, events: EventPublisher, flight: Flight) -> None:
        self._events = events
        self._flight = flight
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(RUNNING_DELAY, self._start)

    def _start(self) -> None:
        self._task = asyncio.create_task(self._announce())

    async def _announce(self) -> None:
        job = self._flight.job
        try:
            await self._events.status(
                job.identity, JobState.RUNNING, seq=RUNNING_SEQ, started_at=self._flight.started_at
            )
        except BusError as exc:  # informative only: the outcome will still be recorded
            logger.warning("job.running_not_published", job_id=job.job_id, error=str(exc))

    async def settle(self) -> None:
        """Skip ``running`` if it is not due yet; else let it go out before the outcome does."""
        self._timer.cancel()
        if self._task is not None:
            await self._task


async def _until_due(flight: Flight, safe_hold: float) -> bool:
    """Wait out a retry's backoff (holding its request); False if stopped meanwhile."""
    delay = min(flight.not_before - time.time(), safe_hold)
    if delay > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(flight.stopped.wait(), delay)
    return not flight.stopped.is_set()


def _stopped_before_start(flight: Flight) -> Outcome:
    reason, detail = flight.control.stop_reason
    if reason is StopReason.CANCELLED:
        return _cancelled_before_start(detail)
    return Outcome(JobState.INTERRUPTED, "herk node stopped before the job started", started=False)


def _cancelled_before_start(requested_by: str) -> Outcome:
    reason = "cancelled before it started" + (f" by {requested_by}" if requested_by else "")
    return Outcome(JobState.CANCELLED, reason, started=False)
