"""The master: one request delivery from admission to acknowledgement.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec
import pykka

from herk import acceptance, ledger, metrics, retry
from herk.acceptance import AcceptancePolicy
from herk.admission import Job, Rejection, admit
from herk.bridge import LoopBridge
from herk.catalogue import Catalogue
from herk.control import StopReason
from herk.events import RUNNING_SEQ, EventPublisher
from herk.flight import NOT_BEFORE_HEADER, Flight
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
STUCK_MARGIN = acceptance.STUCK_MARGIN
RUNNING_DELAY = 0.02
"""A job held until its outcome reports ``running`` only if it is still running after this long:
most benchmark-sized jobs end sooner, and their terminal event carries ``started_at`` instead."""
LONG_JOB = 1.0
"""A job running longer than this makes its node stop taking requests beyond its free workers."""
WORKER_WAIT = 2.0
"""A request that found no free worker for this long is handed back for another node to run."""
HANDED_BACK_HEADER = "x-megam-handed-back-by"

T = TypeVar("T")


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
    ) -> None:
        self.name = name
        self._bus = bus
        self._sealer = sealer
        self._catalogue = catalogue
        self._pool = pool
        self._events = events
        self._bridge = bridge
        self._policy = policy or AcceptancePolicy()
        self._on_capacity_change = on_capacity_change
        self._on_accepted = on_accepted
        self._ledger = ledger.JobLedger(bus, name, self._policy.claim_keep)
        self.flights: dict[str, Flight] = {}
        self.unrecorded: dict[str, wire.HeldJob] = {}
        """Accepted jobs whose terminal status could not be published: still ours to answer for."""
        self.long_running = 0
        """Jobs here running for longer than LONG_JOB."""
        self.cancels: BoundedMemory[str] = BoundedMemory(100_000)
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
        remembered = self.outcomes.get(_attempt_key(job))
        if remembered is not None:
            if remembered.state.terminal:  # else it was retried: its next attempt is queued
                await self._record(job, remembered)
            await _settle(flight.delivery.ack())
            return True
        requested_by = self.cancels.get(job.job_id)
        if requested_by is not None:
            await self._final(flight, _cancelled_before_start(requested_by))
            return True
        if not self.accepting:
            await self._hand_back(flight)
            return True
        return False

    async def _fly(self, flight: Flight) -> None:
        job = flight.job
        self.flights[job.job_id] = flight
        self.idle.clear()
        metrics.IN_FLIGHT.inc()
        try:
            outcome = await self._execute(flight)
            if outcome is not None:
                await self._conclude(flight, outcome)
        except BaseException:
            if flight.accepted:  # the broker forgot it: keep telling who holds it
                self.unrecorded[job.job_id] = flight.held_job()
            raise
        finally:
            flight.finished.set()
            del self.flights[job.job_id]
            metrics.IN_FLIGHT.dec()
            if flight.accepted:
                self._on_capacity_change()
            if not self.flights:
                self.idle.set()

    async def _execute(self, flight: Flight) -> Outcome | None:
        """The attempt's outcome; None if it did not start and there is nothing to record (its
        acceptance failed, or it was handed back for want of a free worker)."""
        if not await self._until_due(flight):
            return _stopped_before_start(flight)
        slot = await self._acquire(flight)
        if slot is None:
            if flight.stopped.is_set():
                return _stopped_before_start(flight)
            await self._hand_back(flight)  # no worker came free: another node may have one
            return None
        if flight.acks_on_accept and not await self._accept(flight):
            await self._pool.release(slot)
            return None
        if flight.stopped.is_set():  # cancelled or stopped while it was being accepted
            await self._pool.release(slot)
            return _stopped_before_start(flight)
        return await self._run(flight, slot)

    async def _until_due(self, flight: Flight) -> bool:
        """Wait out a retry's backoff (holding its request); False if stopped meanwhile."""
        delay = min(flight.not_before - time.time(), self._policy.safe_hold)
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(flight.stopped.wait(), delay)
        return not flight.stopped.is_set()

    async def _acquire(self, flight: Flight) -> Slot | None:
        """A free worker, or None if the flight was stopped or no worker came free in time."""
        slot = None if flight.stopped.is_set() else self._pool.try_acquire()
        if slot is not None:
            return slot
        acquiring = asyncio.ensure_future(self._pool.acquire())
        stopping = asyncio.ensure_future(flight.stopped.wait())
        await asyncio.wait(
            {acquiring, stopping}, timeout=WORKER_WAIT, return_when=asyncio.FIRST_COMPLETED
        )
        stopping.cancel()
        if flight.stopped.is_set() or not acquiring.done():
            acquiring.cancel()
            try:
                slot = await acquiring
            except asyncio.CancelledError:
                return None
            await self._pool.release(slot)
            return None
        return acquiring.result()

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
            metrics.ACCEPTS_UNCONFIRMED.inc()
            logger.warning("job.accept_unconfirmed", job_id=job.job_id, error=str(exc))
        # Claimed after the ack, not before: a claim that a redelivery could find would turn
        # the redelivery of a job that never started into a duplicate.
        if not job.definition.idempotent and not await self._claim(flight):
            return False
        flight.accepted = True
        flight.started_at = started_at
        metrics.ACCEPTED.labels(job.request.type).inc()
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
            metrics.ACCEPTS_UNCONFIRMED.inc()
            logger.warning("job.claim_unconfirmed", job_id=job.job_id, error=str(exc))
            return False
        if first is None:
            return True
        logger.warning("job.duplicate", job_id=job.job_id, first=first)
        reason = ledger.duplicate_reason(first)
        await self._reliably(lambda: self._dead_letter(flight.delivery, reason, kind="duplicate"))
        return False

    async def _run(self, flight: Flight, slot: Slot) -> Outcome:
        request = flight.job.request
        if not flight.started:
            flight.started_at = time.time()
        if request.created_at:
            metrics.QUEUE_WAIT.labels(request.type).observe(
                max(0.0, flight.started_at - request.created_at)
            )
        metrics.BUSY_WORKERS.inc()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Outcome] = loop.create_future()
        if not flight.job.definition.runs_subprocess:
            done.set_result(Outcome(JobState.SUCCEEDED))  # nothing to run: no thread to cross
        else:
            self._tell(slot, RunJob(flight.job, flight.control, self._bridge.resolver(done)))
        running = not done.done()
        announcing = _Announcement(self, flight) if running and not flight.accepted else None
        long = loop.call_later(LONG_JOB, self._count_long, flight, +1) if running else None
        try:
            return await self._supervise(flight, slot, done)
        finally:
            if long is not None:
                long.cancel()
            if flight.long:
                self._count_long(flight, -1)
            metrics.BUSY_WORKERS.dec()
            metrics.BUSY_SECONDS.inc(max(0.0, time.time() - flight.started_at))
            if announcing is not None:
                await announcing.settle()

    def _count_long(self, flight: Flight, change: int) -> None:
        flight.long = change > 0
        self.long_running += change
        self._on_capacity_change()

    def _tell(self, slot: Slot, message: RunJob) -> None:
        try:
            assert slot.ref is not None
            slot.ref.tell(message)
        except pykka.ActorDeadError:  # died between the liveness check and now
            self._pool.restart(slot)
            assert slot.ref is not None
            slot.ref.tell(message)

    async def _supervise(
        self, flight: Flight, slot: Slot, done: asyncio.Future[Outcome]
    ) -> Outcome:
        definition = flight.job.definition
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + definition.timeout + definition.kill_grace + STUCK_MARGIN
        assert slot.death is not None and slot.ref is not None
        while True:
            if done.done():  # already (a job without a subprocess): no wait to set up
                await self._pool.release(slot)
                return done.result()
            wait = max(0.0, min(LIVENESS_POLL, give_up_at - loop.time()))
            await asyncio.wait(
                {done, slot.death}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
            )
            if done.done():
                continue
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
        job = flight.job
        if outcome.tail:  # before the outcome: a reader that sees the end has every line
            lines = list(outcome.tail)
            await self._reliably(lambda: self._events.logs(job.identity, lines))
        reason, _ = flight.control.stop_reason
        metrics.JOBS.labels(job.request.type, str(outcome.state)).inc()
        metrics.JOB_DURATION.labels(job.request.type).observe(outcome.duration)
        stopped_for_shutdown = (
            reason is StopReason.SHUTDOWN and outcome.state is JobState.INTERRUPTED
        )
        # A job that is not idempotent is not handed back once accepted: its claim is spent, a
        # copy would be a duplicate.
        may_run_elsewhere = job.definition.idempotent or not (outcome.started or flight.accepted)
        if stopped_for_shutdown and may_run_elsewhere:
            await self._hand_back(flight)
            return
        if retry.should_retry(job.definition, outcome, job.request.attempt):
            await self._retry(flight, outcome)
            return
        await self._final(flight, outcome)

    async def _retry(self, flight: Flight, outcome: Outcome) -> None:
        """Publish the next attempt at once, due after its backoff: a delayed re-publish that
        survives any restart, held by whichever node receives it until it is due."""
        job, policy = flight.job, flight.job.definition.retry
        attempt = job.request.attempt
        delay = retry.backoff_delay(policy, attempt)
        reason = (
            f"attempt {attempt} {outcome.state}: {outcome.reason or 'no reason given'}; "
            f"attempt {attempt + 1} of {policy.max_attempts} in {delay:.1f} s"
        )
        await self._reliably(
            lambda: self._events.status(
                job.identity, JobState.QUEUED, reason=reason, started_at=flight.started_at
            )
        )
        following = msgspec.structs.replace(job.request, attempt=attempt + 1)
        await self._reliably(
            lambda: self._bus.publish(
                topology.REQUESTS.name,
                topology.request_key(job.request.type),
                wire.encode(following),
                message_id=f"{job.job_id}.{attempt + 1}",
                correlation_id=job.request.correlation_id or None,
                headers={NOT_BEFORE_HEADER: int((time.time() + delay) * 1000)},
            )
        )
        metrics.RETRIES.labels(job.request.type).inc()
        self.outcomes.remember(_attempt_key(job), Outcome(JobState.QUEUED, reason))
        await self._release_request(flight)

    async def _final(self, flight: Flight, outcome: Outcome) -> None:
        job = flight.job
        await self._record(job, outcome, flight.started_at)
        policy = job.definition.retry
        if outcome.state in (JobState.FAILED, JobState.TIMED_OUT) and policy.max_attempts > 1:
            reason = f"gave up after {job.request.attempt} attempts: {outcome.reason}"
            await self._reliably(
                lambda: self._dead_letter(flight.delivery, reason, kind="exhausted")
            )
        self.outcomes.remember(_attempt_key(job), outcome)
        await self._release_request(flight)

    async def _record(self, job: Job, outcome: Outcome, started_at: float = 0.0) -> None:
        await self._reliably(
            lambda: self._events.status(
                job.identity,
                outcome.state,
                reason=outcome.reason,
                exit_code=outcome.exit_code,
                started_at=started_at if outcome.started else 0.0,
            )
        )

    async def _release_request(self, flight: Flight) -> None:
        """The outcome is recorded: a request held until now is acknowledged."""
        if not flight.accepted:
            await _settle(flight.delivery.ack())

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

    async def _hand_back(self, flight: Flight) -> None:
        """Put the request back as a fresh message (a broker requeue would mark it redelivered)."""
        delivery = flight.delivery
        headers = {**delivery.headers, HANDED_BACK_HEADER: self.name}
        await self._reliably(
            lambda: self._bus.publish(
                topology.REQUESTS.name,
                topology.request_key(flight.job.request.type),
                delivery.body,
                message_id=delivery.message_id,
                correlation_id=delivery.correlation_id,
                headers=headers,
            )
        )
        logger.info("request.handed_back", job_id=flight.job.job_id)
        await self._release_request(flight)

    async def _reliably(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Repeat a publish until the broker confirms it (the request stays unacked, so safe,
        meanwhile), or a claim until the broker answers (asking again is safe)."""
        delay = 0.5
        while True:
            try:
                return await operation()
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

    def hand_back_waiting(self, detail: str) -> None:
        """Give up the jobs not started yet (waiting for a worker or a retry's backoff)."""
        for flight in self.flights.values():
            if not flight.started and not flight.accepted:
                flight.stop(StopReason.SHUTDOWN, detail)

    @property
    def accepted_running(self) -> int:
        return sum(1 for flight in self.flights.values() if flight.accepted)

    def held_jobs(self) -> list[wire.HeldJob]:
        held = [flight.held_job() for flight in self.flights.values()]
        return held + [job for key, job in self.unrecorded.items() if key not in self.flights]


class _Announcement:
    """The delayed ``running`` of a job held until its outcome (see RUNNING_DELAY)."""

    def __init__(self, master: Master, flight: Flight) -> None:
        self._master = master
        self._flight = flight
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(RUNNING_DELAY, self._start)

    def _start(self) -> None:
        self._task = asyncio.create_task(self._announce())

    async def _announce(self) -> None:
        job = self._flight.job
        try:
            await self._master._events.status(
                job.identity, JobState.RUNNING, seq=RUNNING_SEQ, started_at=self._flight.started_at
            )
        except BusError as exc:  # informative only: the outcome will still be recorded
            logger.warning("job.running_not_published", job_id=job.job_id, error=str(exc))

    async def settle(self) -> None:
        """Skip ``running`` if it is not due yet; else let it go out before the outcome does."""
        self._timer.cancel()
        if self._task is not None:
            await self._task


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
