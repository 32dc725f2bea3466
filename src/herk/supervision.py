"""Getting a worker for a flight, running the flight on it, and watching the worker meanwhile.

pykka has no supervision: a worker actor that dies (an exception escaping a job), stops, or stays
stuck past its job's timeout is replaced in its slot here, the job's group SIGKILLed, and the
attempt ends ``interrupted`` with the reason.
"""

from __future__ import annotations

import asyncio

import pykka

from herk import acceptance
from herk.bridge import LoopBridge
from herk.flight import Flight
from herk.observer import Happened, Observer, Step
from herk.outcome import Outcome
from herk.pool import Slot, WorkerPool
from herk.worker import RunJob
from megam import log
from megam.wire import JobState

logger = log.get("herk.supervision")

LIVENESS_POLL = 1.0
"""How often a busy worker's actor is checked to be still alive."""
STUCK_MARGIN = acceptance.STUCK_MARGIN
WORKER_WAIT = 2.0
"""A request that found no free worker for this long is handed back for another node to run."""


class Supervisor:
    def __init__(self, pool: WorkerPool, bridge: LoopBridge, observe: Observer) -> None:
        self._pool = pool
        self._bridge = bridge
        self._observe = observe

    async def acquire(self, flight: Flight) -> Slot | None:
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

    async def release(self, slot: Slot) -> None:
        await self._pool.release(slot)

    def start(self, flight: Flight, slot: Slot) -> asyncio.Future[Outcome]:
        """Tell the slot's worker to run the flight; the future is its outcome."""
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        if not flight.job.definition.runs_subprocess:
            done.set_result(Outcome(JobState.SUCCEEDED))  # nothing to run: no thread to cross
        else:
            self._tell(slot, RunJob(flight.job, flight.control, self._bridge.resolver(done)))
        return done

    def _tell(self, slot: Slot, message: RunJob) -> None:
        try:
            assert slot.ref is not None
            slot.ref.tell(message)
        except pykka.ActorDeadError:  # died between the liveness check and now
            self._pool.restart(slot)
            assert slot.ref is not None
            slot.ref.tell(message)

    async def watch(self, flight: Flight, slot: Slot, done: asyncio.Future[Outcome]) -> Outcome:
        """The outcome of the run, once its worker is free again (or replaced)."""
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
        self._observe(Happened(Step.WORKER_REPLACED))
        await self._pool.replace(slot)
        return Outcome(JobState.INTERRUPTED, reason)


def _describe(exc: BaseException | None) -> str:
    return "no exception" if exc is None else f"{type(exc).__name__}: {exc}"
