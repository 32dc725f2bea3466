"""The metrics observer: each step of the flow moves the metrics it stands for, once."""

from __future__ import annotations

from prometheus_client import REGISTRY

from herk.observer import Happened, MetricsObserver, Step


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def moved(name: str, event: Happened, **labels: str) -> float:
    before = sample(name, **labels)
    MetricsObserver()(event)
    return sample(name, **labels) - before


class TestCounts:
    def test_a_concluded_attempt_counts_its_outcome_and_its_run_time(self) -> None:
        event = Happened(Step.CONCLUDED, "obs.type", "failed", 2.5)
        before = sample("megam_herk_job_duration_seconds_sum", type="obs.type")
        assert moved("megam_herk_jobs_total", event, type="obs.type", outcome="failed") == 1
        after = sample("megam_herk_job_duration_seconds_sum", type="obs.type")
        assert after - before == 2.5

    def test_dead_letters_by_kind_and_retries_by_type(self) -> None:
        letter = Happened(Step.DEAD_LETTERED, kind="duplicate")
        assert moved("megam_herk_dead_letters_total", letter, kind="duplicate") == 1
        assert moved("megam_herk_retries_total", Happened(Step.RETRIED, "obs.r"), type="obs.r") == 1

    def test_acceptances_and_what_could_not_be_confirmed(self) -> None:
        accepted = Happened(Step.ACCEPTED, "obs.a")
        assert moved("megam_herk_jobs_accepted_total", accepted, type="obs.a") == 1
        assert moved("megam_herk_accepts_unconfirmed_total", Happened(Step.UNCONFIRMED)) == 1


class TestGauges:
    def test_held_and_released_balance_the_jobs_in_flight(self) -> None:
        assert moved("megam_herk_jobs_in_flight", Happened(Step.HELD)) == 1
        assert moved("megam_herk_jobs_in_flight", Happened(Step.RELEASED)) == -1

    def test_a_run_keeps_a_worker_busy_and_adds_its_busy_seconds(self) -> None:
        start = Happened(Step.RUN_STARTED, "obs.b", seconds=0.25)
        assert moved("megam_herk_workers_busy", start) == 1
        end = Happened(Step.RUN_ENDED, "obs.b", seconds=1.5)
        assert moved("megam_herk_worker_busy_seconds_total", end) == 1.5
        assert sample("megam_herk_queue_wait_seconds_count", type="obs.b") == 1

    def test_a_request_without_a_creation_time_has_no_queue_wait(self) -> None:
        MetricsObserver()(Happened(Step.RUN_STARTED, "obs.c", seconds=-1.0))
        MetricsObserver()(Happened(Step.RUN_ENDED, "obs.c"))
        assert sample("megam_herk_queue_wait_seconds_count", type="obs.c") == 0
