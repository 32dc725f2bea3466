"""How an attempt's outcome is concluded: the policies that decide, and what each decision
publishes.

A decision is taken by the first policy of :data:`POLICIES` that has something to say, each one
small, named and a plain function of the :class:`Ending` (think Dramatiq's middleware):

* :func:`hand_back_on_shutdown`: a job the node stopped for its shutdown goes back to the queue,
  if it may run elsewhere (idempotent, or never begun: an accepted job that is not idempotent has
  spent its claim, and a copy would be a duplicate of itself);
* :func:`retry_with_backoff`: an idempotent job whose failure its retry policy covers is tried
  again, after an exponential backoff with equal jitter (herk.retry);
* :func:`final`: anything else is the attempt's last word, and dead-lettered ("exhausted") when
  it failed after its retries.

:class:`Concluder` carries a decision out, in the order the delivery guarantee needs: the last
log lines, then the status, then whatever goes to the broker's request side, and only then the
acknowledgement of a request held until its outcome (docs/herk.md, "Delivery semantics").
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Awaitable, Callable, Sequence

import msgspec

from herk import retry
from herk.admission import Job, Rejection
from herk.control import StopReason
from herk.events import EventPublisher, RequestPublisher
from herk.flight import Flight
from herk.memory import BoundedMemory
from herk.observer import Happened, Observer, Step
from herk.outcome import Outcome
from herk.reliably import Reliably
from megam import log
from megam.bus import Delivery
from megam.wire import JobState

logger = log.get("herk.conclusion")


@dataclasses.dataclass(frozen=True, slots=True)
class Ending:
    """What the policies look at: the attempt, how it ended, and why it was stopped, if it was."""

    job: Job
    outcome: Outcome
    stop_reason: StopReason | None = None
    accepted: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class HandBack:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class Retry:
    delay: float
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Final:
    outcome: Outcome
    dead_letter: str | None = None
    """The reason it goes to ``herk.requests.dead`` as well, if it does."""


Decision = HandBack | Retry | Final
Policy = Callable[[Ending], Decision | None]


def hand_back_on_shutdown(ending: Ending) -> HandBack | None:
    stopped_for_shutdown = (
        ending.stop_reason is StopReason.SHUTDOWN
        and ending.outcome.state is JobState.INTERRUPTED
    )
    begun = ending.outcome.started or ending.accepted
    may_run_elsewhere = ending.job.definition.idempotent or not begun
    return HandBack() if stopped_for_shutdown and may_run_elsewhere else None


def retry_with_backoff(
    ending: Ending, uniform: Callable[[], float] = random.random
) -> Retry | None:
    job, outcome = ending.job, ending.outcome
    attempt = job.request.attempt
    if not retry.should_retry(job.definition, outcome, attempt):
        return None
    policy = job.definition.retry
    delay = retry.backoff_delay(policy, attempt, uniform)
    reason = (
        f"attempt {attempt} {outcome.state}: {outcome.reason or 'no reason given'}; "
        f"attempt {attempt + 1} of {policy.max_attempts} in {delay:.1f} s"
    )
    return Retry(delay, reason)


def final(ending: Ending) -> Final:
    outcome, job = ending.outcome, ending.job
    gave_up = outcome.state in (JobState.FAILED, JobState.TIMED_OUT)
    if gave_up and job.definition.retry.max_attempts > 1:
        return Final(outcome, f"gave up after {job.request.attempt} attempts: {outcome.reason}")
    return Final(outcome)


POLICIES: tuple[Policy, ...] = (hand_back_on_shutdown, retry_with_backoff, final)


def decide(ending: Ending, policies: Sequence[Policy] = POLICIES) -> Decision:
    for policy in policies:
        decision = policy(ending)
        if decision is not None:
            return decision
    return final(ending)


def attempt_key(job: Job) -> str:
    return f"{job.job_id}#{job.request.attempt}"


class Concluder:
    def __init__(
        self,
        events: EventPublisher,
        requests: RequestPublisher,
        reliably: Reliably,
        observe: Observer,
        outcomes: BoundedMemory[Outcome],
    ) -> None:
        self._events = events
        self._requests = requests
        self._reliably = reliably
        self._observe = observe
        self.outcomes = outcomes
        """Of the last attempts concluded here: a redelivery after a lost ack is answered."""

    async def conclude(self, flight: Flight, outcome: Outcome) -> None:
        job = flight.job
        if outcome.tail:  # before the outcome: a reader that sees the end has every line
            self._events.last_logs(job.identity, list(outcome.tail))
        self._observe(
            Happened(Step.CONCLUDED, job.request.type, str(outcome.state), outcome.duration)
        )
        reason, _ = flight.control.stop_reason
        decision = decide(Ending(job, outcome, reason, flight.accepted))
        if isinstance(decision, HandBack):
            await self.hand_back(flight)
        elif isinstance(decision, Retry):
            await self._retry(flight, decision)
        else:
            await self._final(flight, decision)

    async def final(self, flight: Flight, outcome: Outcome) -> None:
        """The attempt's last word, decided without running it (cancelled before it started)."""
        await self._final(flight, final(Ending(flight.job, outcome)))

    async def _final(self, flight: Flight, decision: Final) -> None:
        job, outcome = flight.job, decision.outcome
        await self.record(job, outcome, flight.started_at)
        if decision.dead_letter is not None:
            await self.dead_letter(flight.delivery, decision.dead_letter, kind="exhausted")
        self.outcomes.remember(attempt_key(job), outcome)
        await release(flight)

    async def _retry(self, flight: Flight, decision: Retry) -> None:
        """Publish the next attempt at once, due after its backoff: a delayed re-publish that
        survives any restart, held by whichever node receives it until it is due."""
        job = flight.job
        await self._reliably(
            lambda: self._events.status(
                job.identity, JobState.QUEUED, reason=decision.reason, started_at=flight.started_at
            )
        )
        following = msgspec.structs.replace(job.request, attempt=job.request.attempt + 1)
        due = int((time.time() + decision.delay) * 1000)
        await self._reliably(lambda: self._requests.next_attempt(following, due))
        self._observe(Happened(Step.RETRIED, job.request.type))
        self.outcomes.remember(attempt_key(job), Outcome(JobState.QUEUED, decision.reason))
        await release(flight)

    async def record(self, job: Job, outcome: Outcome, started_at: float = 0.0) -> None:
        await self._reliably(
            lambda: self._events.status(
                job.identity,
                outcome.state,
                reason=outcome.reason,
                exit_code=outcome.exit_code,
                started_at=started_at if outcome.started else 0.0,
            )
        )

    async def hand_back(self, flight: Flight) -> None:
        delivery, job_type = flight.delivery, flight.job.request.type
        await self._reliably(lambda: self._requests.hand_back(delivery, job_type))
        logger.info("request.handed_back", job_id=flight.job.job_id)
        await release(flight)

    async def dead_letter(self, delivery: Delivery, reason: str, *, kind: str) -> None:
        """Counted once the broker confirmed it: a reader of the dead letters may see it first."""
        await self._reliably(lambda: self._requests.dead_letter(delivery, reason))
        self._observe(Happened(Step.DEAD_LETTERED, kind=kind))

    async def reject(self, delivery: Delivery, rejection: Rejection) -> None:
        logger.warning("request.rejected", reason=rejection.reason)
        await self.dead_letter(delivery, rejection.reason, kind="rejected")
        if rejection.identity is not None:
            identity = rejection.identity
            await self._reliably(
                lambda: self._events.status(identity, JobState.REJECTED, reason=rejection.reason)
            )
        await settle(delivery.ack())


async def release(flight: Flight) -> None:
    """The outcome is recorded: a request held until now is acknowledged."""
    if not flight.accepted:
        await settle(flight.delivery.ack())


async def settle(ack: Awaitable[None]) -> None:
    """Acknowledge; a lost channel means the broker redelivers, which the next holder answers."""
    try:
        await ack
    except Exception as exc:
        logger.warning("request.ack_lost", error=repr(exc))
