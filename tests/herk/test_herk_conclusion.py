"""The conclusion policies, alone: plain functions of how an attempt ended."""

from __future__ import annotations

import msgspec
import pytest
from herk_testkit import job_request

from herk.admission import Job
from herk.catalogue import JobDefinition, RetryPolicy
from herk.conclusion import (
    POLICIES,
    Ending,
    Final,
    HandBack,
    Retry,
    decide,
    final,
    hand_back_on_shutdown,
    retry_with_backoff,
)
from herk.control import StopReason
from herk.outcome import Outcome
from megam.wire import JobState

RETRIES = RetryPolicy(max_attempts=3, backoff=2.0, backoff_max=60.0, retry_on=("failed",))
NO_RETRIES = RetryPolicy()


def job(*, idempotent: bool = True, retry: RetryPolicy = NO_RETRIES, attempt: int = 1) -> Job:
    definition = JobDefinition(
        name="test.job", description="", idempotent=idempotent, timeout=10, retry=retry
    )
    request = msgspec.structs.replace(job_request("test.job"), attempt=attempt)
    return Job(request, definition, None, {})


FAILED = Outcome(JobState.FAILED, "exit code 1: boom", 1, 0.5)
INTERRUPTED = Outcome(JobState.INTERRUPTED, "herk node h stopped before the job finished")
NEVER_BEGUN = Outcome(
    JobState.INTERRUPTED, "herk node stopped before the job started", started=False
)


class TestHandBackOnShutdown:
    def test_an_idempotent_job_stopped_for_a_shutdown_goes_back(self) -> None:
        ending = Ending(job(), INTERRUPTED, StopReason.SHUTDOWN)
        assert hand_back_on_shutdown(ending) == HandBack()

    def test_a_job_that_is_not_idempotent_goes_back_only_if_it_never_began(self) -> None:
        once = job(idempotent=False)
        assert hand_back_on_shutdown(Ending(once, NEVER_BEGUN, StopReason.SHUTDOWN)) == HandBack()
        assert hand_back_on_shutdown(Ending(once, INTERRUPTED, StopReason.SHUTDOWN)) is None
        accepted = Ending(once, NEVER_BEGUN, StopReason.SHUTDOWN, accepted=True)
        assert hand_back_on_shutdown(accepted) is None, "its claim is spent"

    def test_a_cancel_or_a_real_ending_is_not_a_shutdown(self) -> None:
        assert hand_back_on_shutdown(Ending(job(), INTERRUPTED, StopReason.CANCELLED)) is None
        succeeded = Outcome(JobState.SUCCEEDED)
        assert hand_back_on_shutdown(Ending(job(), succeeded, StopReason.SHUTDOWN)) is None


class TestRetryWithBackoff:
    def test_a_covered_failure_is_retried_with_the_plan_in_its_reason(self) -> None:
        decision = retry_with_backoff(Ending(job(retry=RETRIES, attempt=2), FAILED), lambda: 0.5)
        # attempt 2: ceiling 2 * 2 = 4 s, equal jitter at 0.5 → 3 s
        assert decision == Retry(
            3.0, "attempt 2 failed: exit code 1: boom; attempt 3 of 3 in 3.0 s"
        )

    def test_no_retry_past_the_last_attempt_nor_for_an_uncovered_state(self) -> None:
        assert retry_with_backoff(Ending(job(retry=RETRIES, attempt=3), FAILED)) is None
        timed_out = Outcome(JobState.TIMED_OUT, "timed out")
        assert retry_with_backoff(Ending(job(retry=RETRIES), timed_out)) is None

    def test_a_job_that_is_not_idempotent_is_never_retried(self) -> None:
        assert retry_with_backoff(Ending(job(idempotent=False, retry=RETRIES), FAILED)) is None


class TestFinal:
    def test_a_failure_after_retries_is_dead_lettered_as_exhausted(self) -> None:
        decision = final(Ending(job(retry=RETRIES, attempt=3), FAILED))
        assert decision == Final(FAILED, "gave up after 3 attempts: exit code 1: boom")

    @pytest.mark.parametrize("state", [JobState.SUCCEEDED, JobState.CANCELLED])
    def test_other_endings_are_only_recorded(self, state: JobState) -> None:
        outcome = Outcome(state)
        assert final(Ending(job(retry=RETRIES, attempt=3), outcome)) == Final(outcome)

    def test_a_failure_without_a_retry_policy_is_not_a_dead_letter(self) -> None:
        assert final(Ending(job(), FAILED)) == Final(FAILED)


class TestDecide:
    def test_the_first_policy_with_an_answer_decides(self) -> None:
        shutdown = Ending(job(retry=RETRIES), INTERRUPTED, StopReason.SHUTDOWN)
        assert decide(shutdown) == HandBack()
        assert isinstance(decide(Ending(job(retry=RETRIES), FAILED)), Retry)
        assert decide(Ending(job(), FAILED)) == Final(FAILED)

    def test_the_policies_run_in_their_documented_order(self) -> None:
        assert (hand_back_on_shutdown, retry_with_backoff, final) == POLICIES

    def test_without_any_policy_that_answers_the_ending_is_final(self) -> None:
        assert decide(Ending(job(), FAILED), policies=()) == Final(FAILED)
