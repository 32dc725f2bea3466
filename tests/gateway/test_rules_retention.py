"""The retention rule alone (``gateway.rules.retention``)."""

from __future__ import annotations

from gateway.rules import retention
from gateway.store.records import Retention
from tests.gateway.records import job

DAY = 86400.0


def test_each_kind_of_data_has_its_own_cut_off() -> None:
    metrics = (2 * DAY, 3 * DAY, 4 * DAY)
    kept = Retention(log_seconds=1 * DAY, job_seconds=10 * DAY, metric_seconds=metrics)
    cut = retention.cutoffs(kept, now=100 * DAY)
    assert (cut.lines_before, cut.jobs_before) == (99 * DAY, 90 * DAY)
    assert cut.metrics_before == ((0, 98 * DAY), (300, 97 * DAY), (3600, 96 * DAY))


def test_only_jobs_finished_before_the_cut_off_expire() -> None:
    cut = retention.cutoffs(Retention(job_seconds=10 * DAY), now=100 * DAY)
    assert retention.job_expired(job(state="succeeded", updated_at=80 * DAY), cut)
    assert not retention.job_expired(job(state="succeeded", updated_at=95 * DAY), cut)
    # unfinished jobs are never dropped, however old
    assert not retention.job_expired(job(state="running", updated_at=1.0), cut)
    assert not retention.job_expired(job(state="queued", updated_at=1.0), cut)
