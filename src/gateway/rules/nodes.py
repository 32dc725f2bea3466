"""Node rules: the status a job leaves a node in, node updates (renames), admitting a request."""

from __future__ import annotations

import msgspec

from gateway.lifecycle import NodeStatus, node_status_after
from gateway.store.base import Conflict, NotStored
from gateway.store.records import Job, Node, NodeChange
from megam.wire import JobState


def moved(node: Node, req_type: str, state: JobState, at: float) -> Node | None:
    """The node once its job of ``req_type`` reached ``state``; None when its status stays."""
    status = str(node_status_after(req_type, state, node.status))
    if status == node.status:
        return None
    return msgspec.structs.replace(node, status=status, updated_at=at)


def updated(
    node: Node | None, name: str, change: NodeChange, *, busy: bool, at: float
) -> Node:
    """Megam's node update of the live node ``name``: an empty field keeps the old value.

    A rename waits until the node's jobs have ended (``busy``): herk's events name the node.
    """
    if node is None or node.status == NodeStatus.DELETED:
        raise NotStored(f"you have no live node named {name}")
    if busy and change.new_name and change.new_name != node.name:
        raise Conflict(f"node {name} has an unfinished job; rename it once the job has ended")
    return msgspec.structs.replace(
        node,
        status=change.status or node.status,
        name=change.new_name or node.name,
        appdefnsid=change.appdefnsid or node.appdefnsid,
        boltdefnsid=change.boltdefnsid or node.boltdefnsid,
        updated_at=at,
    )


def admit_request(job: Job, node: Node | None, pending: str | None) -> None:
    """Raise :class:`Conflict` unless a further job (a delete) may be stored for its node.

    ``pending`` is the id of the node's unfinished job of the same ``req_type``, if any.
    """
    if node is None:
        raise Conflict(f"node {job.node_name} does not exist")
    if node.status == NodeStatus.DELETED:
        raise Conflict(f"node {job.node_name} is already deleted")
    if pending is not None:
        raise Conflict(
            f"a {job.req_type} request for {job.node_name} is already in progress (job {pending})"
        )
