"""The job rules alone (``gateway.rules.jobs``): records in, changes out, no store."""

from __future__ import annotations

from gateway import lifecycle
from gateway.rules import jobs as rules
from tests.gateway.records import job, node, status


class TestStatusEvents:
    def test_a_newer_event_moves_the_job_and_records_it_in_the_history(self) -> None:
        event = status("running", reason="worker 1 took it", herk="herk-a")
        decision = rules.status_event((job(), node()), event, now=99.0)
        assert decision.outcome.applied and decision.outcome.node_id == "NOD1"
        [change] = decision.changes.jobs
        moved = change.job
        assert (moved.state, moved.reason, moved.herk, moved.attempt, moved.seq) == (
            "running", "worker 1 took it", "herk-a", 1, 1,
        )  # fmt: skip
        assert moved.updated_at == 10.0  # the event's own time, not the clock
        assert change.entry is not None and change.entry.state == "running"
        assert moved.history[-1] == change.entry
        assert decision.changes.nodes == ()  # a running create leaves the node LAUNCHING

    def test_the_clock_stands_in_for_an_event_without_a_time(self) -> None:
        decision = rules.status_event((job(), node()), status("running", at=0.0), now=99.0)
        assert decision.changes.jobs[0].job.updated_at == 99.0

    def test_the_ending_of_a_create_moves_the_node(self) -> None:
        done = rules.status_event((job(), node()), status("succeeded", exit_code=0), now=1.0)
        [moved] = done.changes.nodes
        assert moved.status == "RUNNING" and moved.updated_at == 10.0
        failed = rules.status_event((job(), node()), status("failed", exit_code=2), now=1.0)
        assert failed.changes.nodes[0].status == "NOTRUNNING"
        assert failed.changes.jobs[0].job.exit_code == 2

    def test_an_event_without_an_exit_code_keeps_the_one_stored(self) -> None:
        decision = rules.status_event((job(exit_code=3), node()), status("running"), now=1.0)
        assert decision.changes.jobs[0].job.exit_code == 3

    def test_an_event_that_is_not_newer_changes_nothing(self) -> None:
        stored = job(state="running", attempt=1, seq=2)
        for attempt, seq in ((1, 2), (1, 1)):
            late = status("failed", attempt=attempt, seq=seq)
            decision = rules.status_event((stored, node()), late, now=1.0)
            assert (decision.outcome.applied, decision.outcome.why) == (False, "stale")
            assert decision.changes == rules.Changes()

    def test_a_later_attempt_is_newer_whatever_its_seq(self) -> None:
        stored = job(state="running", attempt=1, seq=5)
        decision = rules.status_event((stored, node()), status("running", attempt=2, seq=1), 1.0)
        assert decision.outcome.applied

    def test_a_job_that_has_ended_stays_ended(self) -> None:
        stored = job(state="succeeded", attempt=1, seq=2)
        decision = rules.status_event((stored, node()), status("failed", seq=9), now=1.0)
        assert decision.outcome.why == "job already ended (succeeded)"
        assert not decision.changes.jobs

    def test_events_for_unknown_jobs_or_other_owners_are_told_apart(self) -> None:
        unknown = rules.status_event(None, status("running"), now=1.0)
        assert (unknown.outcome.why, unknown.outcome.mismatch) == ("unknown job", False)
        other = rules.status_event((job(), node()), status("running", account="ACT2"), 1.0)
        assert other.outcome.mismatch and "do not own job RIP1" in other.outcome.why
        assert not other.changes.jobs


class TestCancel:
    def test_a_job_still_in_the_outbox_ends_cancelled_and_drops_its_entry(self) -> None:
        cancel = rules.cancel(job(), node(), in_outbox=True, requested_by="a@b.c", at=5.0)
        assert cancel.outcome.ended_here
        assert cancel.outcome.job.state == "cancelled"
        reason = lifecycle.CANCELLED_UNPUBLISHED_REASON.format(by="a@b.c")
        assert cancel.outcome.job.reason == reason
        assert cancel.changes.dropped_outbox == ("RIP1",)
        assert cancel.changes.nodes[0].status == "NOTRUNNING"

    def test_a_published_job_keeps_its_state_and_records_the_request(self) -> None:
        for state in ("queued", "running"):
            stored = job(state=state)
            cancel = rules.cancel(stored, node(), in_outbox=False, requested_by="x", at=5.0)
            assert not cancel.outcome.ended_here
            [change] = cancel.changes.jobs
            assert change.job.state == state
            assert change.entry is not None
            assert change.entry.reason.startswith("cancel requested by x")
            assert cancel.changes.nodes == () and cancel.changes.dropped_outbox == ()

    def test_a_running_job_with_an_unconfirmed_entry_loses_it_but_keeps_running(self) -> None:
        running = job(state="running")
        cancel = rules.cancel(running, node(), in_outbox=True, requested_by="x", at=5.0)
        assert cancel.outcome.job.state == "running"
        assert cancel.changes.dropped_outbox == ("RIP1",)

    def test_an_ended_job_is_left_as_it_is(self) -> None:
        ended = job(state="failed")
        cancel = rules.cancel(ended, node(), in_outbox=False, requested_by="x", at=5.0)
        assert cancel.outcome.job is ended and not cancel.outcome.ended_here
        assert cancel.changes == rules.Changes()


class TestOutboxReasons:
    def test_a_confirmed_publish_marks_the_job_published_and_drops_the_entry(self) -> None:
        changes = rules.published("RIP1", job(published=False), failures=0, at=5.0)
        [change] = changes.jobs
        assert change.job.published and change.entry is None
        assert changes.dropped_outbox == ("RIP1",)

    def test_a_publish_after_failures_tells_the_owner_once_it_is_queued(self) -> None:
        [change] = rules.published("RIP1", job(published=False), failures=2, at=5.0).jobs
        assert change.job.reason == lifecycle.REPUBLISHED_REASON.format(attempts=3)
        assert change.entry is not None and change.entry.at == 5.0

    def test_a_publish_of_a_job_already_moved_on_keeps_its_reason(self) -> None:
        [change] = rules.published("RIP1", job(state="running"), failures=2, at=5.0).jobs
        assert change.job.reason == "waiting" and change.entry is None

    def test_a_publish_of_a_job_gone_only_drops_the_entry(self) -> None:
        assert rules.published("RIP1", None, failures=0, at=5.0) == rules.Changes(
            dropped_outbox=("RIP1",)
        )

    def test_a_failed_publish_explains_itself_and_enters_the_history_the_first_time(self) -> None:
        first = rules.publish_failed(job(), "broker down", first=True, at=5.0)
        again = rules.publish_failed(job(), "broker down", first=False, at=6.0)
        assert first is not None and again is not None
        assert "broker down" in first.job.reason and first.entry is not None
        assert again.job.reason == first.job.reason and again.entry is None

    def test_a_failed_publish_of_a_job_that_is_no_longer_queued_changes_nothing(self) -> None:
        assert rules.publish_failed(job(state="running"), "x", first=True, at=5.0) is None
        assert rules.publish_failed(None, "x", first=True, at=5.0) is None


class TestTruthfulEndings:
    """The attempt that ran a job decides its ending; a presumed ``interrupted`` gives way."""

    presumed = job(state="interrupted", attempt=1, seq=5, presumed=True)

    def test_the_attempts_own_outcome_replaces_a_presumed_interruption(self) -> None:
        late = status("succeeded", attempt=1, seq=2, exit_code=0, reason="server created")
        decision = rules.status_event((self.presumed, node(status="NOTRUNNING")), late, 1.0)
        assert decision.outcome.applied
        [change] = decision.changes.jobs
        assert (change.job.state, change.job.exit_code, change.job.presumed) == (
            "succeeded", 0, False,
        )  # fmt: skip
        assert change.entry is not None and change.entry.reason == "server created"
        assert decision.changes.nodes[0].status == "RUNNING"

    def test_once_replaced_the_ending_is_final(self) -> None:
        first = rules.status_event((self.presumed, node()), status("failed", seq=2), 1.0)
        real = first.changes.jobs[0].job
        again = rules.status_event((real, node()), status("succeeded", seq=3), 1.0)
        assert again.outcome.why == "job already ended (failed)"

    def test_another_attempts_outcome_does_not_replace_it(self) -> None:
        for attempt in (0, 2):
            other = status("succeeded", attempt=attempt, seq=9)
            decision = rules.status_event((self.presumed, node()), other, 1.0)
            assert decision.outcome.why == "job already ended (interrupted)"

    def test_the_presumption_coming_back_over_the_bus_is_no_report(self) -> None:
        presumed = job(state="interrupted", seq=2, attempt=1, reason="herk-a stopped",
                       presumed=True)  # fmt: skip
        echo = status("interrupted", attempt=1, seq=2, reason="herk-a stopped")
        decision = rules.status_event((presumed, node()), echo, 1.0)
        assert decision.outcome.why == "job already ended (interrupted)"
        real = status("interrupted", attempt=1, seq=2, reason="killed by the runner's timeout")
        assert rules.status_event((presumed, node()), real, 1.0).outcome.applied

    def test_a_late_progress_event_does_not_reopen_it(self) -> None:
        running = status("running", attempt=1, seq=9)
        decision = rules.status_event((self.presumed, node()), running, 1.0)
        assert not decision.outcome.applied

    def test_a_reported_ending_is_never_replaced(self) -> None:
        reported = job(state="interrupted", attempt=1, seq=5)  # herk's own report
        decision = rules.status_event((reported, node()), status("succeeded", seq=6), 1.0)
        assert not decision.outcome.applied

    def test_a_presumption_never_replaces_an_ending_nor_a_newer_state(self) -> None:
        ended = job(state="succeeded", attempt=1, seq=2)
        guess = status("interrupted", attempt=1, seq=3)
        assert not rules.status_event((ended, node()), guess, 1.0, presumed=True).outcome.applied
        applied = rules.status_event((job(state="running", attempt=1, seq=1), node()), guess, 1.0,
                                     presumed=True)  # fmt: skip
        assert applied.changes.jobs[0].job.presumed

    def test_a_later_attempts_events_never_fight_an_earlier_ones(self) -> None:
        second = job(state="running", attempt=2, seq=1)
        earlier = status("failed", attempt=1, seq=7)
        assert rules.status_event((second, node()), earlier, 1.0).outcome.why == "stale"
