"""What a retention pass drops: the cut-off times both stores' queries apply.

A log line goes once it is older than the log retention; a job goes with its history, outbox
entry and lines once it has been finished (its last change, the ending) for longer than the job
retention, and never while it is unfinished; each resolution of the metric series goes after
its own time, raw samples only once they are rolled up. Nodes are never dropped.
"""

from __future__ import annotations

import msgspec

from gateway.store.records import ROLLUP_STEPS, Job, Retention
from megam.wire import JobState


class Cutoffs(msgspec.Struct, frozen=True, kw_only=True):
    lines_before: float
    jobs_before: float
    """A finished job last changed before this is dropped."""
    metrics_before: tuple[tuple[int, float], ...]
    """``(step, before)`` per resolution, raw samples (step 0) first."""


def cutoffs(retention: Retention, now: float) -> Cutoffs:
    return Cutoffs(
        lines_before=now - retention.log_seconds,
        jobs_before=now - retention.job_seconds,
        metrics_before=tuple((step, now - retention.keeps(step)) for step in (0, *ROLLUP_STEPS)),
    )


def job_expired(job: Job, cut: Cutoffs) -> bool:
    """The rule the stores' queries implement for jobs (a finished job's ending is its last
    change: it never changes again)."""
    return JobState(job.state).terminal and job.updated_at < cut.jobs_before
