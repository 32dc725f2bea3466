"""A herk node SIGKILLed in the middle of jobs while a second one runs: the jobs it held until their
outcome are redelivered and run on the survivor; the jobs it had accepted are not redelivered
(never twice), and end ``interrupted`` once its heartbeats stop."""

from __future__ import annotations

from pathlib import Path

from megam.bus.amqp import AmqpBus
from tests.faults.faultkit import HerkProcesses, Recorder, new_request, runs_of, submit


async def test_sigkill_mid_jobs_loses_nothing_and_runs_nothing_unsafe_twice(
    broker: AmqpBus, recorder: Recorder, herk_nodes: HerkProcesses, runs: Path
) -> None:
    herk_nodes.start("victim", workers=2)
    herk_nodes.start("survivor", workers=2)
    requests = await submit(
        broker,
        (new_request("fault.once" if n % 2 else "fault.safe", n) for n in range(24)),
    )

    def victim_mid_jobs() -> bool:
        beat = recorder.beats.get("victim")
        return beat is not None and {job.accepted for job in beat.jobs} == {True, False}

    await recorder.until(victim_mid_jobs, "the victim to hold an accepted and a held job")
    held_by_victim = recorder.beats["victim"].jobs
    herk_nodes.kill("victim")

    await recorder.all_ended([r.job_id for r in requests], timeout=120)

    assert herk_nodes.alive("survivor")
    for request in requests:
        state, ran = recorder.state(request.job_id), runs_of(runs, request.job_id)
        if request.type == "fault.safe":
            assert (state, ran >= 1) == ("succeeded", True), request.job_id
        else:
            assert ran <= 1, f"{request.job_id} ran {ran} times"
            if state == "succeeded":
                assert ran == 1, request.job_id
    for job in held_by_victim:
        if job.accepted:  # acknowledged before it started: the broker did not give it back
            assert recorder.state(job.job_id) == "interrupted", job.job_id
            assert recorder.interrupted_by_rule[job.job_id] == "herk node victim stopped"
        else:  # the broker redelivered it to the survivor, which ran it to its end
            assert recorder.statuses[job.job_id][-1].herk == "survivor"
