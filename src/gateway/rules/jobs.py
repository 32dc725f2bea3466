"""Job rules: what a status event does to a job and its node, cancelling, the outbox's reasons.

Status events are ordered by ``(attempt, seq)``; only a strictly newer one moves the job, so an
earlier attempt's late events never undo a later one's. A job that has ended stays ended, with
one exception (truthful endings): an ending the gateway only presumed (the reconciler's
``interrupted`` for a silent herk node) gives way to the outcome the same attempt's runner
reports, whatever its seq, since that attempt is the one that ran the job.

A cancel ends a job that never reached the broker (its outbox entry goes with it); any other
unfinished job keeps its state, with the request in its history, until herk reports the outcome.
"""

from __future__ import annotations

import msgspec

from gateway import lifecycle
from gateway.rules import nodes
from gateway.store.records import (
    CancelOutcome,
    Changes,
    EventOutcome,
    HistoryEntry,
    Job,
    JobChange,
    Node,
)
from megam.wire import JobState, StatusEvent


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """What to answer, and what to write for it (nothing when the event does not apply)."""

    outcome: EventOutcome
    changes: Changes = Changes()


class Cancel(msgspec.Struct, frozen=True, kw_only=True):
    outcome: CancelOutcome
    changes: Changes = Changes()


_UNKNOWN = EventOutcome(applied=False, why="unknown job")


def owned(job: Job | None, job_id: str, account: str, node: str) -> Job | EventOutcome:
    """``job`` when an event naming ``job_id``, ``account`` and ``node`` applies to it, else why
    not. An event naming an account or node that does not own the job is refused
    (``mismatch``): the consumer dead-letters it."""
    if job is None:
        return _UNKNOWN
    if (job.account_id, job.node_name) != (account, node):
        return EventOutcome(
            applied=False,
            mismatch=True,
            why=f"event names account {account} and node {node}, which do not own job {job_id}",
        )
    return job


def status_event(
    found: tuple[Job, Node] | None, event: StatusEvent, now: float, *, presumed: bool = False
) -> Decision:
    """Move the job (and its node) ``found`` under the event's job id on by ``event``; stale,
    duplicate or late events, or events for a job that has ended, do nothing. ``presumed``: the
    event is the gateway's own presumption of the ending, not the runner's report."""
    stored, node = found if found is not None else (None, None)
    job = owned(stored, event.job_id, event.account, event.node)
    if isinstance(job, EventOutcome) or node is None:
        return Decision(outcome=job if isinstance(job, EventOutcome) else _UNKNOWN)
    if lifecycle.is_terminal(job.state):
        if not supersedes(job, event, presumed=presumed):
            why = f"job already ended ({job.state})"
            return Decision(outcome=EventOutcome(applied=False, why=why, node_id=job.node_id))
    elif not lifecycle.is_newer(event.attempt, event.seq, job.attempt, job.seq):
        return Decision(outcome=EventOutcome(applied=False, why="stale", node_id=job.node_id))
    at = event.at or now
    entry = HistoryEntry(
        state=event.state.value, reason=event.reason, exit_code=event.exit_code, at=at
    )
    moved = msgspec.structs.replace(
        job,
        state=event.state.value,
        reason=event.reason,
        exit_code=job.exit_code if event.exit_code is None else event.exit_code,
        attempt=event.attempt,
        seq=event.seq,
        herk=event.herk or job.herk,
        updated_at=at,
        history=(*job.history, entry),
        presumed=presumed,
    )
    return Decision(
        outcome=EventOutcome(applied=True, node_id=job.node_id),
        changes=_with_node(JobChange(job=moved, entry=entry), node, at),
    )


def supersedes(job: Job, event: StatusEvent, *, presumed: bool) -> bool:
    """Whether ``event`` replaces the ending of ``job``: only the outcome its own attempt's
    runner reports replaces an ending the gateway presumed; a real ending is final. The
    presumption itself, come back over the bus (the reconciler announces it), is no report."""
    echo = (event.state.value, event.reason, event.seq) == (job.state, job.reason, job.seq)
    return (
        job.presumed
        and not presumed
        and not echo
        and event.state.terminal
        and event.attempt == job.attempt
    )


def cancel(job: Job, node: Node, *, in_outbox: bool, requested_by: str, at: float) -> Cancel:
    """A cancel of ``job`` by ``requested_by``; ``in_outbox``: its message was never confirmed
    by the broker (the entry is dropped, so the outbox loop never publishes it)."""
    if lifecycle.is_terminal(job.state):
        return Cancel(outcome=CancelOutcome(job=job, ended_here=False, node_id=job.node_id))
    if in_outbox and job.state == JobState.QUEUED:
        state, reason = JobState.CANCELLED, lifecycle.CANCELLED_UNPUBLISHED_REASON
    else:
        state, reason = JobState(job.state), lifecycle.CANCEL_REQUESTED_REASON
    reason = reason.format(by=requested_by)
    entry = HistoryEntry(state=state.value, reason=reason, at=at)
    cancelled = msgspec.structs.replace(
        job, state=state.value, reason=reason, updated_at=at, history=(*job.history, entry)
    )
    changes = _with_node(JobChange(job=cancelled, entry=entry), node, at)
    if in_outbox:
        changes = msgspec.structs.replace(changes, dropped_outbox=(job.id,))
    outcome = CancelOutcome(job=cancelled, ended_here=state.terminal, node_id=job.node_id)
    return Cancel(outcome=outcome, changes=changes)


def published(job_id: str, job: Job | None, failures: int, at: float) -> Changes:
    """The broker confirmed the job's message after ``failures`` failed publishes: its outbox
    entry goes, the job is marked published and, if it had to wait, says it is queued now."""
    dropped = (job_id,)
    if job is None:
        return Changes(dropped_outbox=dropped)
    done = msgspec.structs.replace(job, published=True)
    if failures and job.state == JobState.QUEUED:
        reason = lifecycle.REPUBLISHED_REASON.format(attempts=failures + 1)
        done_change = _queued_reason(done, reason, at, record=True)
    else:
        done_change = JobChange(job=done)
    return Changes(jobs=(done_change,), dropped_outbox=dropped)


def publish_failed(job: Job | None, error: str, *, first: bool, at: float) -> JobChange | None:
    """Publishing the job failed: tell its owner why it waits (in its history the first time)."""
    if job is None or job.state != JobState.QUEUED:
        return None
    reason = lifecycle.UNPUBLISHED_REASON.format(error=error)
    return _queued_reason(job, reason, at, record=first)


def _queued_reason(job: Job, reason: str, at: float, *, record: bool) -> JobChange:
    entry = HistoryEntry(state=JobState.QUEUED.value, reason=reason, at=at) if record else None
    history = job.history if entry is None else (*job.history, entry)
    changed = msgspec.structs.replace(job, reason=reason, updated_at=at, history=history)
    return JobChange(job=changed, entry=entry)


def _with_node(change: JobChange, node: Node, at: float) -> Changes:
    """The job's change, and its node's when the job's new state moves it."""
    moved = nodes.moved(node, change.job.req_type, JobState(change.job.state), at)
    return Changes(jobs=(change,), nodes=() if moved is None else (moved,))
