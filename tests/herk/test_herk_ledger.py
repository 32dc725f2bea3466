"""The job ledger: a job that is not idempotent starts on at most one herk node, even when its
request reached the broker twice under one job id (a producer retrying a publish whose confirm
it lost). The copy that finds the job claimed is dead-lettered with the reason and gets no status
event of its own: the job's record is the first copy's."""

from __future__ import annotations

from pathlib import Path

import pytest
from herk_testkit import (
    EventLog,
    QueueLog,
    job_request,
    kill_quietly,
    read_pids,
    release,
    sleeper_actor,
    started,
    submit,
    until,
)
from prometheus_client import REGISTRY

from herk.ledger import JobLedger
from megam import topology, wire
from megam.bus import Bus, BusError

DUPLICATE_BY_FIRST = "duplicate: a copy of this job was accepted before by herk node first "


@pytest.fixture
def actors(tmp_path: Path) -> Path:
    directory = tmp_path / "actors"
    sleeper_actor(directory, "test.once", idempotent=False)
    return directory


def duplicates_dead_lettered() -> float:
    return REGISTRY.get_sample_value("megam_herk_dead_letters_total", {"kind": "duplicate"}) or 0


def terminal_events(events: EventLog, job_id: str) -> list[wire.StatusEvent]:
    return [event for event in events.status_of(job_id) if event.state.terminal]


class TestACopyOfAJobThatIsNotIdempotent:
    async def test_arriving_while_the_job_runs_on_another_node_is_dead_lettered_not_run(
        self, bus: Bus, events: EventLog, start_herk, actors: Path, data_dir: Path
    ) -> None:
        dead = await QueueLog().attach(bus, topology.HERK_REQUESTS_DEAD.name)
        first = await start_herk(bus, actors_dir=actors, workers=1, name="first")
        request = await submit(bus, job_request("test.once"))
        pids = await started(events, data_dir, request.job_id)
        try:
            await until(lambda: first.intake_prefetch == 0, "first to stop receiving")
            counted = duplicates_dead_lettered()
            await start_herk(bus, actors_dir=actors, name="second")
            await submit(bus, request)  # the producer's second copy: same job id

            [letter] = await dead.wait_for(1)
            assert letter.headers[wire.REASON_HEADER].startswith(DUPLICATE_BY_FIRST)
            assert letter.headers[wire.HERK_HEADER] == "second"
            assert wire.decode(letter.body, wire.JobRequest).job_id == request.job_id
            # counted once the dead letter's publish is confirmed: the letter may be seen first
            await until(lambda: duplicates_dead_lettered() == counted + 1, "the duplicate counted")

            release(data_dir, request.job_id)
            done = await events.terminal(request.job_id)
            assert (done.state, done.herk) == ("succeeded", "first")
            assert read_pids(data_dir / f"{request.job_id}.pids") == pids, "one run"
            assert [e.herk for e in terminal_events(events, request.job_id)] == ["first"]
            assert await bus.queue_depth(topology.HERK_REQUESTS.name) == 0
        finally:
            kill_quietly(pids)

    async def test_arriving_after_the_job_ended_at_a_node_restarted_under_its_name_is_not_run(
        self, bus: Bus, events: EventLog, start_herk, actors: Path, data_dir: Path
    ) -> None:
        """The restarted node remembers nothing; the claim in the broker does, and it is not
        taken for the new node's own although the node's name is the same."""
        dead = await QueueLog().attach(bus, topology.HERK_REQUESTS_DEAD.name)
        first = await start_herk(bus, actors_dir=actors, name="first")
        request = await submit(bus, job_request("test.once"))
        pids = await started(events, data_dir, request.job_id)
        try:
            release(data_dir, request.job_id)
            assert (await events.terminal(request.job_id)).state == "succeeded"
            await first.stop(grace=5)
            (data_dir / f"{request.job_id}.pids").unlink()

            await start_herk(bus, actors_dir=actors, name="first")
            await submit(bus, request)
            [letter] = await dead.wait_for(1)
            assert letter.headers[wire.REASON_HEADER].startswith(DUPLICATE_BY_FIRST)
            assert not (data_dir / f"{request.job_id}.pids").exists(), "not run again"
            assert len(terminal_events(events, request.job_id)) == 1
        finally:
            kill_quietly(pids)


class TestTheClaim:
    async def test_whose_answer_was_lost_is_asked_again_and_the_job_runs_once(
        self,
        bus: Bus,
        events: EventLog,
        start_herk,
        actors: Path,
        data_dir: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        real_claim = JobLedger.claim
        asked: list[str] = []

        async def answer_lost_once(self: JobLedger, job_id: str, holder: str) -> str | None:
            answer = await real_claim(self, job_id, holder)
            asked.append(holder)
            if len(asked) == 1:
                raise BusError("connection lost before the answer arrived")
            return answer

        monkeypatch.setattr(JobLedger, "claim", answer_lost_once)
        await start_herk(bus, actors_dir=actors, name="first")
        request = await submit(bus, job_request("test.once"))
        pids = await started(events, data_dir, request.job_id)
        try:
            release(data_dir, request.job_id)
            assert (await events.terminal(request.job_id)).state == "succeeded"
            assert len(asked) == 2 and asked[0] == asked[1], "asked again as the same holder"
        finally:
            kill_quietly(pids)

    async def test_is_spent_once_made_so_a_stop_before_the_start_records_the_job_interrupted(
        self,
        bus: Bus,
        events: EventLog,
        start_herk,
        actors: Path,
        data_dir: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Handed back, the request would come back as a duplicate of itself and never run."""
        node = await start_herk(bus, actors_dir=actors, name="first")
        real_claim = JobLedger.claim

        async def stop_right_after(self: JobLedger, job_id: str, holder: str) -> str | None:
            answer = await real_claim(self, job_id, holder)
            node.master.stop_all("herk node first stopped")  # as a SIGTERM would, just now
            return answer

        monkeypatch.setattr(JobLedger, "claim", stop_right_after)
        request = await submit(bus, job_request("test.once"))
        done = await events.terminal(request.job_id)
        assert (done.state, done.reason) == (
            "interrupted",
            "herk node stopped before the job started",
        )
        assert not (data_dir / f"{request.job_id}.pids").exists(), "never started"
        assert await bus.queue_depth(topology.HERK_REQUESTS.name) == 0, "not handed back"
