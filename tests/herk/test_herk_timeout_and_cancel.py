"""A job that runs too long, or that an operator cancels, takes its whole process group with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from herk_testkit import (
    EventLog,
    control,
    job_request,
    kill_quietly,
    release,
    sleeper_actor,
    started,
    started_again,
    submit,
    until,
    wait_dead,
)

from megam.bus import Bus


@pytest.fixture
def actors(tmp_path: Path) -> Path:
    directory = tmp_path / "actors"
    sleeper_actor(directory, "test.sleep", timeout=60)
    sleeper_actor(directory, "test.stubborn", timeout=1, kill_grace=1, extra=', "--ignore-term"')
    return directory


class TestTimeout:
    async def test_kills_the_process_group_grandchild_included_even_if_sigterm_is_ignored(
        self, bus: Bus, events: EventLog, start_herk, actors: Path, data_dir: Path
    ) -> None:
        await start_herk(bus, actors_dir=actors)
        request = await submit(bus, job_request("test.stubborn"))
        pids = await started(events, data_dir, request.job_id)
        try:
            done = await events.terminal(request.job_id)
            assert done.state == "timed_out"
            assert done.reason == "timed out after 1 s; its process group was killed"
            assert done.exit_code == -9  # SIGTERM was ignored: SIGKILL after the grace
            assert await wait_dead(pids) == []
        finally:
            kill_quietly(pids)


class TestCancel:
    async def test_a_running_job_is_stopped_and_recorded_cancelled(
        self, bus: Bus, events: EventLog, start_herk, actors: Path, data_dir: Path
    ) -> None:
        await start_herk(bus, actors_dir=actors)
        request = await submit(bus, job_request("test.sleep"))
        pids = await started(events, data_dir, request.job_id)
        try:
            await control(bus, "cancel", job_id=request.job_id)
            done = await events.terminal(request.job_id)
            assert done.state == "cancelled"
            assert done.reason == "cancelled while running"
            assert await wait_dead(pids) == []
            assert events.states(request.job_id) == ["running", "cancelled"]
        finally:
            kill_quietly(pids)

    async def test_a_queued_job_never_starts(
        self, bus: Bus, events: EventLog, start_herk, actors: Path, data_dir: Path
    ) -> None:
        herk = await start_herk(bus, actors_dir=actors, workers=1)
        blocker = await submit(bus, job_request("test.sleep"))
        pids = await started(events, data_dir, blocker.job_id)
        try:
            queued = await submit(bus, job_request("test.sleep"))
            await control(bus, "cancel", job_id=queued.job_id)
            await until(lambda: queued.job_id in herk.master.cancels, "the cancel to arrive")
            # Let the one worker go: the queued job is delivered next, and must not start.
            release(data_dir, blocker.job_id)
            assert (await events.terminal(blocker.job_id)).state == "succeeded"

            done = await events.terminal(queued.job_id)
            assert done.state == "cancelled"
            assert done.reason == "cancelled before it started by tests"
            assert events.states(queued.job_id) == ["cancelled"]
            assert not (data_dir / f"{queued.job_id}.pids").exists()
        finally:
            kill_quietly(pids)


class TestDurableCancel:
    async def test_a_job_cancelled_while_no_herk_node_runs_never_starts(
        self, bus: Bus, events: EventLog, start_herk, actors: Path, data_dir: Path
    ) -> None:
        queued = await submit(bus, job_request("test.sleep"))
        await control(bus, "cancel", job_id=queued.job_id)  # nobody listens: herk.cancels keeps it
        await start_herk(bus, actors_dir=actors)

        done = await events.terminal(queued.job_id)
        assert done.state == "cancelled"
        assert done.reason == "cancelled before it started by tests"
        assert not (data_dir / f"{queued.job_id}.pids").exists()

    async def test_a_cancel_outlives_the_node_that_heard_it(
        self, bus: Bus, events: EventLog, start_herk, actors: Path, data_dir: Path
    ) -> None:
        first = await start_herk(bus, actors_dir=actors, workers=1, name="first")
        blocker = await submit(bus, job_request("test.sleep"))
        pids = await started(events, data_dir, blocker.job_id)
        try:
            # Once its job runs long, the node takes no request beyond its one worker: the next
            # one stays in the broker's queue, where only the stream can cancel it for later.
            await until(lambda: first.intake_prefetch == 0, "the node to take no more")
            queued = await submit(bus, job_request("test.sleep"))
            await control(bus, "cancel", job_id=queued.job_id)
            await until(lambda: queued.job_id in first.master.cancels, "the cancel to arrive")
            await first.stop(grace=0)  # its memory of the cancel goes with it

            await start_herk(bus, actors_dir=actors, workers=1, name="second")
            done = await events.terminal(queued.job_id)
            assert (done.state, done.herk) == ("cancelled", "second")
            assert not (data_dir / f"{queued.job_id}.pids").exists()
            pids += await started_again(data_dir, blocker.job_id, pids)
            release(data_dir, blocker.job_id)
            assert (await events.terminal(blocker.job_id)).herk == "second"
        finally:
            kill_quietly(pids)
