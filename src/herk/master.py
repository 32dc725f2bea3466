"""The master: one request delivery from admission to acknowledgement.

The order of the steps is the delivery guarantee. A request is acknowledged only after its
outcome is safely recorded: the terminal status event confirmed by the broker (it lands in the
durable ``gateway.events`` queue), or the request dead-lettered, or a copy handed back to the
queue, or its next attempt re-published. Until then the broker holds it, so a herk node that dies
loses nothing. A redelivered request of a job that is not idempotent is never run again: it may
have started on the node that died (see docs/herk.md, "Delivery semantics").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable

import msgspec
import pykka

from herk import metrics, retry
from herk.admission import Job, Rejection, admit
from herk.bridge import LoopBridge
from herk.catalogue import Catalogue
from herk.control import JobControl, StopReason
from herk.events import EventPublisher
from herk.memory import BoundedMemory
from herk.outcome import Outcome
from herk.pool import Slot, WorkerPool
from herk.worker import RunJob
from megam import log, topology, wire
from megam.bus import Bus, BusError, Delivery
from megam.secrets import Sealer
from megam.wire import JobState

logger = log.get("herk.master")

LIVENESS_POLL = 1.0
"""How often the master checks that a busy worker's actor is still alive."""
STUCK_MARGIN = 10.0
"""Beyond timeout + kill grace, how long a worker may take to report before it counts as stuck."""
HANDED_BACK_HEADER = "x-megam-handed-back-by"


@dataclasses.dataclass(eq=False)
class Flight:
    """A job this node holds: waiting for a worker, running, or being concluded."""

    job: Job
    delivery: Delivery
    control: JobControl = dataclasses.field(default_factory=JobControl)
    stopped: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    finished: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    backing_off: bool = False

    def stop(self, reason: StopReason, detail: str = "") -> None:
        self.control.request_stop(reason, detail)
        self.stopped.set()


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
    ) -> None:
        self.name = name
        self._bus = bus
        self._sealer = sealer
        self._catalogue = catalogue
        self._pool = pool
        self._events = events
        self._bridge = bridge
        self.flights: dict[str, Flight] = {}
        self.cancels: BoundedMemory[str] = BoundedMemory(10_000)
        self.outcomes: BoundedMemory[Outcome] = BoundedMemory(10_000)
        self.accepting = True
        self.shutting_down = False
        self.idle = asyncio.Event()
        self.idle.set()

    # -- the request flow ------------------------------------------------------------------

    async def handle(self, delivery: Delivery) -> None:
        try:
            job = admit(delivery.body, self._catalogue, self._sealer)
        except Rejection as rejection:
            await self._reject(delivery, rejection)
            return
        if delivery.redelivered:
            metrics.REDELIVERIES.labels(job.request.type).inc()
        answered = await self._answer_without_running(job, delivery)
        if not answered:
            await self._fly(job, delivery)

    async def _answer_without_running(self, job: Job, delivery: Delivery) -> bool:
        held = self.flights.get(job.job_id)
        if held is not None:
            # The broker redelivered a job that runs here (our channel was lost): answer this
            # delivery with that run's outcome instead of starting a second run.
            await held.finished.wait()
        remembered = self.outcomes.get(_attempt_key(job))
        if remembered is not None:
            if remembered.state.terminal:  # else it was retried: its next attempt is queued
                await self._record(job, remembered)
            await _settle(delivery.ack())
            return True
        requested_by = self.cancels.forget(job.job_id)
        if requested_by is not None:
            await self._final(job, delivery, _cancelled_before_start(requested_by))
            return True
        if delivery.redelivered and not job.definition.idempotent:
            reason = (
                "redelivered after its herk node or channel was lost; it may have started there "
                "and is not idempotent, so it is not run again"
            )
            await self._final(job, delivery, Outcome(JobState.INTERRUPTED, reason, started=False))
            return True
        if not self.accepting:
            await self._hand_back(job, delivery)
            return True
        return False

    async def _fly(self, job: Job, delivery: Delivery) -> None:
        flight = Flight(job, delivery)
        self.flights[job.job_id] = flight
        self.idle.clear()
        metrics.IN_FLIGHT.inc()
        try:
            outcome = await self._execute(flight)
            await self._conclude(flight, outcome)
        finally:
            flight.finished.set()
            del self.flights[job.job_id]
            metrics.IN_FLIGHT.dec()
            if not self.flights:
                self.idle.set()

    async def _execute(self, flight: Flight) -> Outcome:
        slot = await self._acquire(flight)
        if slot is None:
            return _stopped_before_start(flight)
        request = flight.job.request
        if request.created_at:
            metrics.QUEUE_WAIT.labels(request.type).observe(
                max(0.0, time.time() - request.created_at)
            )
        metrics.BUSY_WORKERS.inc()
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        message = RunJob(flight.job, flight.control, self._bridge.resolver(done))
        try:
            assert slot.ref is not None
            slot.ref.tell(message)
        except pykka.ActorDeadError:  # died between the liveness check and now
            self._pool.restart(slot)
            assert slot.ref is not None
            slot.ref.tell(message)
        try:
            return await self._supervise(flight, slot, done)
        finally:
            metrics.BUSY_WORKERS.dec()

    async def _acquire(self, flight: Flight) -> Slot | None:
        """A free worker, or None if the flight was cancelled or stopped while it waited."""
        acquiring = asyncio.ensure_future(self._pool.acquire())
        stopping = asyncio.ensure_future(flight.stopped.wait())
        await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if flight.stopped.is_set():
            acquiring.cancel()
            try:
                slot = await acquiring
            except asyncio.CancelledError:
                return None
            await self._pool.release(slot)
            return None
        return acquiring.result()

    async def _supervise(
        self, flight: Flight, slot: Slot, done: asyncio.Future[Outcome]
    ) -> Outcome:
        definition = flight.job.definition
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + definition.timeout + definition.kill_grace + STUCK_MARGIN
        assert slot.death is not None and slot.ref is not None
        while True:
            wait = max(0.0, min(LIVENESS_POLL, give_up_at - loop.time()))
            await asyncio.wait(
                {done, slot.death}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
            )
            if done.done():
                await self._pool.release(slot)
                return done.result()
            if slot.death.done():
                return await self._replace(
                    flight, slot, f"worker crashed: {_describe(slot.death.result())}"
                )
            if not slot.ref.is_alive():
                return await self._replace(flight, slot, "worker actor stopped unexpectedly")
            if loop.time() >= give_up_at:
                reason = (
                    f"worker stuck past the job's timeout of {definition.timeout:g} s; "
                    "its process group was killed"
                )
                return await self._replace(flight, slot, reason)

    async def _replace(self, flight: Flight, slot: Slot, reason: str) -> Outcome:
        flight.control.kill_now()
        logger.error("worker.replaced", worker=slot.number, job_id=flight.job.job_id, reason=reason)
        metrics.WORKER_REPLACEMENTS.inc()
        await self._pool.replace(slot)
        return Outcome(JobState.INTERRUPTED, reason)

    async def _conclude(self, flight: Flight, outcome: Outcome) -> None:
        job, delivery = flight.job, flight.delivery
        reason, _ = flight.control.stop_reason
        metrics.JOBS.labels(job.request.type, str(outcome.state)).inc()
        metrics.JOB_DURATION.labels(job.request.type).observe(outcome.duration)
        stopped_for_shutdown = (
            reason is StopReason.SHUTDOWN and outcome.state is JobState.INTERRUPTED
        )
        if stopped_for_shutdown and (not outcome.started or job.definition.idempotent):
            await self._hand_back(job, delivery)
            return
        if retry.should_retry(job.definition, outcome, job.request.attempt):
            await self._retry(flight, outcome)
            return
        await self._final(job, delivery, outcome)

    async def _retry(self, flight: Flight, outcome: Outcome) -> None:
        job, policy = flight.job, flight.job.definition.retry
        attempt = job.request.attempt
        delay = retry.backoff_delay(policy, attempt)
        reason = (
            f"attempt {attempt} {outcome.state}: {outcome.reason or 'no reason given'}; "
            f"attempt {attempt + 1} of {policy.max_attempts} in {delay:.1f} s"
        )
        await self._reliably(
            lambda: self._events.status(job.identity, JobState.QUEUED, reason=reason)
        )
        # The failed attempt's request stays unacknowledged during the backoff: if this node
        # dies now, the broker redelivers it and nothing is lost.
        flight.backing_off = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(flight.stopped.wait(), delay)
        stop_reason, requested_by = flight.control.stop_reason
        if stop_reason is StopReason.CANCELLED:
            await self._final(job, flight.delivery, _cancelled_before_start(requested_by))
            return
        following = msgspec.structs.replace(job.request, attempt=attempt + 1)
        await self._reliably(
            lambda: self._bus.publish(
                topology.REQUESTS.name,
                topology.request_key(job.request.type),
                wire.encode(following),
                message_id=f"{job.job_id}.{attempt + 1}",
                correlation_id=job.request.correlation_id or None,
            )
        )
        metrics.RETRIES.labels(job.request.type).inc()
        self.outcomes.remember(_attempt_key(job), Outcome(JobState.QUEUED, reason))
        await _settle(flight.delivery.ack())

    async def _final(self, job: Job, delivery: Delivery, outcome: Outcome) -> None:
        await self._record(job, outcome)
        policy = job.definition.retry
        if outcome.state in (JobState.FAILED, JobState.TIMED_OUT) and policy.max_attempts > 1:
            reason = f"gave up after {job.request.attempt} attempts: {outcome.reason}"
            await self._reliably(lambda: self._dead_letter(delivery, reason, kind="exhausted"))
        self.outcomes.remember(_attempt_key(job), outcome)
        await _settle(delivery.ack())

    async def _record(self, job: Job, outcome: Outcome) -> None:
        await self._reliably(
            lambda: self._events.status(
                job.identity, outcome.state, reason=outcome.reason, exit_code=outcome.exit_code
            )
        )

    async def _reject(self, delivery: Delivery, rejection: Rejection) -> None:
        logger.warning("request.rejected", reason=rejection.reason)
        await self._reliably(lambda: self._dead_letter(delivery, rejection.reason, kind="rejected"))
        if rejection.identity is not None:
            identity = rejection.identity
            await self._reliably(
                lambda: self._events.status(identity, JobState.REJECTED, reason=rejection.reason)
            )
        await _settle(delivery.ack())

    async def _dead_letter(self, delivery: Delivery, reason: str, *, kind: str) -> None:
        headers = {
            key: value for key, value in delivery.headers.items() if not key.startswith("x-")
        }
        headers[topology.REASON_HEADER] = reason[:2000]
        headers["x-megam-herk"] = self.name
        await self._bus.publish(
            topology.DEAD.name,
            topology.HERK_REQUESTS.dead_letter_to or topology.HERK_REQUESTS.name,
            delivery.body,
            message_id=delivery.message_id,
            correlation_id=delivery.correlation_id,
            headers=headers,
        )
        metrics.DEAD_LETTERS.labels(kind).inc()

    async def _hand_back(self, job: Job, delivery: Delivery) -> None:
        """Put the request back as a fresh message (a broker requeue would mark it redelivered)."""
        headers = dict(delivery.headers)
        headers[HANDED_BACK_HEADER] = self.name
        await self._reliably(
            lambda: self._bus.publish(
                topology.REQUESTS.name,
                topology.request_key(job.request.type),
                delivery.body,
                message_id=delivery.message_id,
                correlation_id=delivery.correlation_id,
                headers=headers,
            )
        )
        logger.info("request.handed_back", job_id=job.job_id)
        await _settle(delivery.ack())

    async def _reliably(self, publish: Callable[[], Awaitable[None]]) -> None:
        """Publish until the broker confirms; the request stays unacked (so safe) meanwhile."""
        delay = 0.5
        while True:
            try:
                await publish()
                return
            except BusError as exc:
                if self.shutting_down:
                    raise
                logger.warning("publish.retrying", error=str(exc), delay=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    # -- steering from the control exchange and from the node -----------------------------

    def cancel(self, job_id: str, requested_by: str = "") -> bool:
        """Cancel a job: stop it if held here, and remember it so a queued copy never starts."""
        self.cancels.remember(job_id, requested_by)
        flight = self.flights.get(job_id)
        if flight is None:
            return False
        flight.stop(StopReason.CANCELLED, requested_by)
        return True

    def stop_all(self, detail: str) -> None:
        for flight in self.flights.values():
            flight.stop(StopReason.SHUTDOWN, detail)

    def cut_backoffs(self, detail: str) -> None:
        """Re-publish retries now instead of holding their requests through a shutdown."""
        for flight in self.flights.values():
            if flight.backing_off:
                flight.stop(StopReason.SHUTDOWN, detail)


def _stopped_before_start(flight: Flight) -> Outcome:
    reason, detail = flight.control.stop_reason
    if reason is StopReason.CANCELLED:
        return _cancelled_before_start(detail)
    return Outcome(JobState.INTERRUPTED, "herk node stopped before the job started", started=False)


def _cancelled_before_start(requested_by: str) -> Outcome:
    reason = "cancelled before it started" + (f" by {requested_by}" if requested_by else "")
    return Outcome(JobState.CANCELLED, reason, started=False)


def _attempt_key(job: Job) -> str:
    return f"{job.job_id}#{job.request.attempt}"


def _describe(exc: BaseException | None) -> str:
    return "no exception" if exc is None else f"{type(exc).__name__}: {exc}"


async def _settle(ack: Awaitable[None]) -> None:
    """Acknowledge; a lost channel means the broker redelivers, which the next holder answers."""
    try:
        await ack
    except Exception as exc:
        logger.warning("request.ack_lost", error=repr(exc))
