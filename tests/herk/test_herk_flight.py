"""A flight's state is one phase that only moves forward; accepted, started and long follow it."""

from __future__ import annotations

import pytest
from herk_testkit import job_request

from herk.admission import Job
from herk.catalogue import JobDefinition
from herk.flight import Flight, Phase, PhaseError
from megam import wire


class StandInDelivery:
    def __init__(self, headers: dict[str, object] | None = None) -> None:
        self.headers = headers or {}


def flight(*, acks_on_accept: bool, headers: dict[str, object] | None = None) -> Flight:
    definition = JobDefinition(name="test.job", description="", idempotent=True, timeout=10)
    job = Job(job_request("test.job"), definition, None, {})
    return Flight(job, StandInDelivery(headers), acks_on_accept)  # type: ignore[arg-type]


class TestPhases:
    def test_a_flight_held_until_its_outcome_is_never_accepted(self) -> None:
        held = flight(acks_on_accept=False)
        assert (held.phase, held.accepted, held.started) == (Phase.WAITING, False, False)
        held.move(Phase.RUNNING, at=100.0)
        assert (held.accepted, held.started, held.started_at) == (False, True, 100.0)

    def test_an_accepted_flight_counts_as_begun_before_it_runs(self) -> None:
        early = flight(acks_on_accept=True)
        early.move(Phase.ACCEPTED, at=50.0)
        assert (early.accepted, early.started, early.held_job().accepted) == (True, True, True)
        early.move(Phase.RUNNING)
        assert early.started_at == 50.0, "the acceptance time stays the start"

    def test_long_is_a_phase_and_ends_with_the_run(self) -> None:
        running = flight(acks_on_accept=False)
        running.move(Phase.LONG, at=1.0)
        assert running.long
        running.move(Phase.RAN)
        assert not running.long and running.started

    def test_a_phase_never_goes_back(self) -> None:
        ran = flight(acks_on_accept=False)
        ran.move(Phase.RAN, at=1.0)
        with pytest.raises(PhaseError, match="RAN → RUNNING"):
            ran.move(Phase.RUNNING)


class TestBackoffHeader:
    def test_the_not_before_header_is_epoch_milliseconds(self) -> None:
        retried = flight(acks_on_accept=False, headers={wire.NOT_BEFORE_HEADER: 1500})
        assert retried.not_before == 1.5

    def test_a_missing_or_foreign_header_means_now(self) -> None:
        assert flight(acks_on_accept=False).not_before == 0.0
        foreign = flight(acks_on_accept=False, headers={wire.NOT_BEFORE_HEADER: "soon"})
        assert foreign.not_before == 0.0
