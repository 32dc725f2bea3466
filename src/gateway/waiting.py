"""Why a job that has not ended is where it is: a machine-readable code and a sentence.

Codes: ``broker_unreachable`` (the gateway's outbox holds it), ``cancel_requested``,
``retry_scheduled`` (herk publishes the next attempt after a backoff), ``no_herk_node`` (no fresh
heartbeat from any herk node), ``queued_behind`` (N jobs ready before it in ``herk.requests``),
``herk_node_unreachable`` (running on a node that missed its heartbeats, for less than the
silence limit: nothing is decided yet), ``herk_node_silent`` (running on a node silent beyond
the limit: the reconciler or a redelivery will settle it), ``running``.
"""

from __future__ import annotations

from typing import Any

from gateway import lifecycle
from gateway.cluster_view import ClusterSnapshot
from gateway.store.records import Job
from megam.wire import JobState

_CANCEL_PREFIX = lifecycle.CANCEL_REQUESTED_REASON.split("{", 1)[0]


def waiting_reason(job: Job, cluster: ClusterSnapshot) -> dict[str, Any] | None:
    """``{"code", "text"}`` for a job that has not ended, else None."""
    if job.state == JobState.QUEUED:
        return _queued(job, cluster)
    if job.state == JobState.RUNNING:
        return _running(job, cluster)
    return None


def _queued(job: Job, cluster: ClusterSnapshot) -> dict[str, Any]:
    if job.reason.startswith(_CANCEL_PREFIX):
        return _reason("cancel_requested", job.reason)
    if not job.published:
        return _reason(
            "broker_unreachable",
            "the broker has not taken the job yet; the gateway holds it and retries "
            f"({job.reason})",
        )
    if job.attempt >= 1:  # herk sent it back to queued: a retry after a backoff
        return _reason("retry_scheduled", job.reason)
    if not cluster.alive:
        return _reason(
            "no_herk_node",
            "no herk node is alive (none sent a heartbeat lately); the job starts when one does",
        )
    if cluster.queue_depth is None:
        return _reason("broker_unreachable", "the broker does not answer; the job is safe in it")
    free = sum(max(0, herk.workers - herk.busy) for herk in cluster.alive)
    return _reason(
        "queued_behind",
        f"queued behind {cluster.queue_depth} jobs; {len(cluster.alive)} herk nodes alive "
        f"with {free} free workers",
        ahead=cluster.queue_depth,
    )


def _running(job: Job, cluster: ClusterSnapshot) -> dict[str, Any]:
    if job.reason.startswith(_CANCEL_PREFIX):
        return _reason("cancel_requested", job.reason)
    herk = cluster.herk(job.herk) if job.herk else None
    if herk is not None and not cluster.is_alive(herk):
        silent = cluster.taken_at - herk.last_seen
        return _reason(
            "herk_node_silent",
            f"herk node {herk.name} sent no heartbeat for {silent:.0f} s; the job ends "
            "interrupted, or runs again elsewhere if the broker still had it",
        )
    unreachable = cluster.unreachable_for(herk) if herk is not None else None
    if herk is not None and unreachable is not None:
        limit = cluster.silence_limit(herk)
        return _reason(
            "herk_node_unreachable",
            f"herk node {herk.name} unreachable for {unreachable:.0f} s; after {limit:.0f} s "
            "of silence the job is presumed interrupted, until the node reports its outcome",
            unreachable_seconds=round(unreachable),
        )
    where = f" on herk node {job.herk}" if job.herk else ""
    return _reason("running", f"running{where}")


def _reason(code: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "text": text, **extra}
