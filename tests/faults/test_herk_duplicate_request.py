"""A request published twice under one job id (a producer retrying a publish whose confirm it
lost) while two herk nodes run: a job that is not idempotent runs once, and each copy that did
not run is dead-lettered, naming the node that accepted the job first."""

from __future__ import annotations

from pathlib import Path

from megam import topology, wire
from megam.bus import Delivery
from megam.bus.amqp import AmqpBus
from tests.faults.faultkit import HerkProcesses, Recorder, new_request, runs_of, submit

DUPLICATE = "duplicate: a copy of this job was accepted before by herk node "


def first_node(letter: Delivery) -> str:
    """The node a dead-lettered duplicate names as the one that accepted the job first."""
    reason = str(letter.headers[wire.REASON_HEADER])
    assert reason.startswith(DUPLICATE), reason
    return reason.removeprefix(DUPLICATE).split(" ", 1)[0]


async def test_a_job_published_twice_runs_once_and_its_copy_is_dead_lettered(
    broker: AmqpBus, recorder: Recorder, herk_nodes: HerkProcesses, runs: Path
) -> None:
    dead: list[Delivery] = []

    async def keep(delivery: Delivery) -> None:
        dead.append(delivery)
        await delivery.ack()

    await broker.consume(topology.HERK_REQUESTS_DEAD.name, keep, prefetch=20)

    # One copy while the job runs on the other node: the node that gets it cannot know the job.
    herk_nodes.start("left", workers=1)
    alone = new_request("fault.once", 0)
    await submit(broker, [alone])

    def left_accepted() -> bool:
        beat = recorder.beats.get("left")
        return beat is not None and [(j.job_id, j.accepted) for j in beat.jobs] == [
            (alone.job_id, True)
        ]

    await recorder.until(left_accepted, "left to accept the job")
    herk_nodes.start("right", workers=1)
    await recorder.until(lambda: "right" in recorder.beats, "right to start")
    await submit(broker, [alone])
    await recorder.until(lambda: len(dead) == 1, "the copy dead-lettered")
    assert (first_node(dead[0]), dead[0].headers[wire.HERK_HEADER]) == ("left", "right")

    # Copies published back to back, so that the two nodes race for each job.
    raced = [new_request("fault.once", n) for n in range(1, 7)]
    await submit(broker, [request for request in raced for _ in range(2)])

    jobs = [alone, *raced]
    await recorder.all_ended([r.job_id for r in jobs], timeout=90)
    assert herk_nodes.alive("left") and herk_nodes.alive("right")
    for request in jobs:
        assert recorder.state(request.job_id) == "succeeded", request.job_id
        assert runs_of(runs, request.job_id) == 1, f"{request.job_id} ran more than once"
    for letter in dead:
        job_id = wire.decode(letter.body, wire.JobRequest).job_id
        ended = [e for e in recorder.statuses[job_id] if e.state.terminal]
        assert {e.herk for e in ended} == {first_node(letter)}, "the node named ran it"
    assert len({wire.decode(d.body, wire.JobRequest).job_id for d in dead}) == len(dead)
