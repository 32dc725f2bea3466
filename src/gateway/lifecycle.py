"""How job states move a node's status: the one rule both store adapters apply.

Megam's node statuses (docs/original.md §2.4). A node is created ``LAUNCHING``; its create job
ending decides ``RUNNING`` or ``NOTRUNNING``; a succeeded delete makes it ``DELETED`` for good.
"""

from __future__ import annotations

import enum

from megam.wire import JobState


class NodeStatus(enum.StrEnum):
    AM_HUNGRY = "AM_HUNGRY"
    PUBLISHED = "PUBLISHED"
    LAUNCHING = "LAUNCHING"
    RUNNING = "RUNNING"
    NOTRUNNING = "NOTRUNNING"
    DELETED = "DELETED"
    NONE = "NONE"


class ReqType(enum.StrEnum):
    CREATE = "create"
    DELETE = "delete"


_CREATE_ENDINGS = {
    JobState.SUCCEEDED: NodeStatus.RUNNING,
    JobState.FAILED: NodeStatus.NOTRUNNING,
    JobState.TIMED_OUT: NodeStatus.NOTRUNNING,
    JobState.INTERRUPTED: NodeStatus.NOTRUNNING,
    JobState.REJECTED: NodeStatus.NOTRUNNING,
    JobState.CANCELLED: NodeStatus.NOTRUNNING,
}


def node_status_after(req_type: str, state: JobState, current: str) -> str:
    """The node's status once a job of ``req_type`` reached ``state``.

    A deleted node stays deleted: a late create outcome must not bring it back to life. A failed
    delete leaves the status alone, because the node may well still be running.
    """
    if current == NodeStatus.DELETED:
        return current
    if req_type == ReqType.CREATE:
        return _CREATE_ENDINGS.get(state, current)
    if req_type == ReqType.DELETE and state == JobState.SUCCEEDED:
        return NodeStatus.DELETED
    return current


def is_newer(attempt: int, seq: int, than_attempt: int, than_seq: int) -> bool:
    """Status events are ordered by (attempt, seq); only a strictly newer one is applied."""
    return (attempt, seq) > (than_attempt, than_seq)


def is_terminal(state: str) -> bool:
    return JobState(state).terminal


QUEUED_REASON = "accepted by the gateway; waiting for a herk worker"
UNPUBLISHED_REASON = "not yet handed to the queue: {error}; the gateway retries automatically"
REPUBLISHED_REASON = "handed to the queue after {attempts} attempts; waiting for a herk worker"
CANCELLED_UNPUBLISHED_REASON = "cancelled by {by} before it reached the queue; it never ran"
CANCEL_REQUESTED_REASON = "cancel requested by {by}; waiting for herk to stop it"
