"""The registry of running jobs' process groups (herk.orphans), on real processes: what a node
that starts again kills, and what it leaves alone because the pid is no longer the job's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from herk_testkit import SLEEPER, kill_quietly, read_pids, wait_dead, wait_for_file

from herk.orphans import GroupRegistry, RegistryBusy, start_time
from herk.provision.local import alive

JOB_ID = "RIP4242"

Spawn = Callable[[str], Awaitable[tuple[subprocess.Popen[bytes], int]]]


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "herk" / "test-node" / "groups"


@pytest.fixture
def registry(directory: Path) -> Iterator[GroupRegistry]:
    opened = GroupRegistry.open(directory)
    yield opened
    opened.close()


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Spawn]:
    """``spawn(job_id)``: a job's stand-in in a session of its own, with a grandchild in its
    group and ``MEGAM_JOB_ID`` in its environment, as herk runs one; returns the leader and the
    grandchild's pid."""
    started: list[subprocess.Popen[bytes]] = []
    pids: list[int] = []

    async def start(job_id: str) -> tuple[subprocess.Popen[bytes], int]:
        pid_file = tmp_path / f"{job_id}-{len(started)}.pids"
        leader = subprocess.Popen(
            [sys.executable, str(SLEEPER), "--pids", str(pid_file)],
            env={"PATH": os.environ["PATH"], "MEGAM_JOB_ID": job_id},
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        started.append(leader)
        await wait_for_file(pid_file, unless=leader.poll)
        _, grandchild = read_pids(pid_file)
        pids.extend([leader.pid, grandchild])
        return leader, grandchild

    yield start
    kill_quietly(pids)
    for leader in started:
        leader.wait()


def restarted(registry: GroupRegistry) -> GroupRegistry:
    """The node dies (its lock goes with it) and a new one opens the same directory."""
    registry.close()
    return GroupRegistry.open(registry.directory)


def records(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.name.isdigit())


async def gone(pids: list[int]) -> bool:
    return await wait_dead(pids) == []


class TestRecording:
    async def test_a_group_is_recorded_with_its_leaders_start_time_until_its_job_ends(
        self, registry: GroupRegistry, directory: Path, spawn: Spawn
    ) -> None:
        leader, _ = await spawn(JOB_ID)
        with registry.recording(JOB_ID) as record:
            record(leader.pid)
            content = (directory / str(leader.pid)).read_text()
        assert content == f"{start_time(leader.pid)} {JOB_ID}\n"
        assert records(directory) == []

    async def test_a_second_node_of_the_same_name_cannot_take_the_records(
        self, registry: GroupRegistry, directory: Path
    ) -> None:
        with pytest.raises(RegistryBusy):
            GroupRegistry.open(directory)
        registry.close()
        GroupRegistry.open(directory).close()


class TestReapingLeftovers:
    async def test_a_live_group_with_the_recorded_start_time_is_killed_whole(
        self, registry: GroupRegistry, directory: Path, spawn: Spawn
    ) -> None:
        leader, grandchild = await spawn(JOB_ID)
        registry.record(leader.pid, JOB_ID)
        reaped = restarted(registry).reap()
        assert [(r.pgid, r.job_id) for r in reaped] == [(leader.pid, JOB_ID)]
        assert await gone([leader.pid, grandchild])
        assert records(directory) == []

    async def test_a_group_whose_leader_died_is_killed_when_a_process_carries_the_job_id(
        self, registry: GroupRegistry, directory: Path, spawn: Spawn
    ) -> None:
        leader, grandchild = await spawn(JOB_ID)
        registry.record(leader.pid, JOB_ID)
        leader.send_signal(signal.SIGKILL)  # as the parent-death signal does
        leader.wait()
        assert alive(grandchild)
        reaped = restarted(registry).reap()
        assert [r.pgid for r in reaped] == [leader.pid]
        assert await gone([grandchild])
        assert records(directory) == []


class TestRecordsWithoutProofAreDroppedWithoutKilling:
    async def test_a_record_whose_processes_are_all_gone(
        self, registry: GroupRegistry, directory: Path, spawn: Spawn
    ) -> None:
        leader, grandchild = await spawn(JOB_ID)
        registry.record(leader.pid, JOB_ID)
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()
        assert await gone([grandchild])
        assert restarted(registry).reap() == []
        assert records(directory) == []

    async def test_a_reused_pid_with_another_start_time(
        self, registry: GroupRegistry, directory: Path, spawn: Spawn
    ) -> None:
        leader, grandchild = await spawn(JOB_ID)
        # What a record of a job long gone looks like once its pid went to this process.
        (directory / str(leader.pid)).write_text(f"{start_time(leader.pid) - 1} {JOB_ID}\n")
        assert restarted(registry).reap() == []
        assert alive(leader.pid) and alive(grandchild)
        assert records(directory) == []

    async def test_a_leaderless_group_of_another_job(
        self, registry: GroupRegistry, directory: Path, spawn: Spawn
    ) -> None:
        """The job's group died, its id went to another leader, which died too."""
        leader, grandchild = await spawn("RIP-someone-else")
        registry.record(leader.pid, JOB_ID)
        leader.send_signal(signal.SIGKILL)
        leader.wait()
        assert restarted(registry).reap() == []
        assert alive(grandchild)
        assert records(directory) == []

    async def test_a_torn_record(
        self, registry: GroupRegistry, directory: Path, spawn: Spawn
    ) -> None:
        leader, grandchild = await spawn(JOB_ID)
        (directory / str(leader.pid)).write_text(str(start_time(leader.pid)))
        assert restarted(registry).reap() == []
        assert alive(leader.pid) and alive(grandchild)
        assert records(directory) == []
