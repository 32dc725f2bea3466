"""The registry of running jobs' process groups (herk.orphans) and the guardian that reaps it
(herk.guardian), on real processes: what the guardian of a node that is gone kills, and a node
that starts again, and what they leave alone because the pid is no longer the job's."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import structlog
from herk_testkit import SLEEPER, kill_quietly, read_pids, until, wait_dead, wait_for_file

from herk.control import JobControl
from herk.guardian import DISMISSED, Guardian, guard
from herk.logstream import LogStream
from herk.node import HerkNode
from herk.orphans import (
    GroupRegistry,
    RegistryBusy,
    private_directory,
    private_root,
    start_time,
)
from herk.provision.local import alive
from herk.runner import Ending, ProcessResult, run_process
from megam.bus import Bus

JOB_ID = "RIP4242"

Spawn = Callable[[str], Awaitable[tuple[subprocess.Popen[bytes], int]]]
SpawnGuardian = Callable[[Path], Guardian]


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


class GuardianLog:
    """What guardians wrote on the test's stderr (they inherit it, as they inherit herk's)."""

    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        self.capfd = capfd
        self.entries: list[dict[str, object]] = []

    def named(self, event: str) -> list[dict[str, object]]:
        for line in self.capfd.readouterr().err.splitlines():
            if line.startswith("{"):
                self.entries.append(json.loads(line))
        return [entry for entry in self.entries if entry["event"] == event]


@pytest.fixture
def guardian_log(capfd: pytest.CaptureFixture[str]) -> GuardianLog:
    return GuardianLog(capfd)


@pytest.fixture
def guardians() -> Iterator[SpawnGuardian]:
    """``guardians(directory)``: a guardian of that registry, dismissed at the end if a test did
    not."""
    spawned: list[Guardian] = []

    def spawn_guardian(directory: Path) -> Guardian:
        spawned.append(Guardian.spawn(directory, "info"))
        return spawned[-1]

    yield spawn_guardian
    for guardian in spawned:
        guardian.dismiss()


def ignores(pid: int, signals: tuple[signal.Signals, ...]) -> bool:
    """Whether the process ignores each of ``signals`` (``SigIgn`` in /proc/<pid>/status)."""
    status = Path(f"/proc/{pid}/status").read_text()
    ignored = int(next(line for line in status.splitlines() if line.startswith("SigIgn:"))[7:], 16)
    return all(ignored & (1 << (signum - 1)) for signum in signals)


def node_died(registry: GroupRegistry, guardian: Guardian) -> None:
    """What a node's death does to its guardian: its lock and its end of the pipe are gone."""
    registry.close()
    guardian.dismiss()


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


def private_files_of_a_process(data_dir: Path, *, linger: bool = False) -> subprocess.Popen[bytes]:
    """Another process that makes its private directory, puts a secret in it and exits, or with
    ``linger`` stays until killed (it is not waited for: a zombie until the caller waits)."""
    code = (
        "import sys, time; from pathlib import Path; from herk.orphans import private_directory; "
        "(private_directory(Path(sys.argv[1])) / 'knife.rb').write_text('secret'); "
        "time.sleep(600 if sys.argv[2] == 'linger' else 0)"
    )
    mode = "linger" if linger else "exit"
    return subprocess.Popen([sys.executable, "-c", code, str(data_dir), mode])


def private_entries(data_dir: Path) -> list[str]:
    return sorted(path.name for path in private_root(data_dir).iterdir())


class TestPrivateFilesOfADeadHerkAreRemoved:
    async def test_the_directory_of_a_process_that_is_gone_is_removed_at_reap(
        self, registry: GroupRegistry, tmp_path: Path
    ) -> None:
        owner = private_files_of_a_process(tmp_path)
        owner.wait()
        [entry] = private_entries(tmp_path)
        assert entry == f"{owner.pid}-{entry.split('-')[1]}"
        restarted(registry).reap()
        assert private_entries(tmp_path) == []

    async def test_a_zombie_owner_counts_as_dead(
        self, registry: GroupRegistry, tmp_path: Path
    ) -> None:
        owner = private_files_of_a_process(tmp_path)
        await until(lambda: _state(owner.pid) == "Z", "the owner to exit unwaited")
        restarted(registry).reap()
        assert private_entries(tmp_path) == []
        owner.wait()

    async def test_a_live_processs_directory_and_foreign_entries_are_kept(
        self, registry: GroupRegistry, tmp_path: Path
    ) -> None:
        mine = private_directory(tmp_path)
        (mine / "knife.rb").write_text("secret")
        (private_root(tmp_path) / "groups").mkdir()  # e.g. a herk named ".private"
        restarted(registry).reap()
        assert private_entries(tmp_path) == sorted([mine.name, "groups"])
        assert (mine / "knife.rb").exists()
        assert oct(mine.stat().st_mode & 0o777) == "0o700"


class TestTheGuardianRemovesTheDeadNodesPrivateFiles:
    """The node's end of the pipe closes a moment before the node is dead: its private files
    look in use until then, so the guardian waits for the death itself."""

    async def test_it_waits_for_the_node_to_be_dead_before_the_reap(
        self, directory: Path, tmp_path: Path
    ) -> None:
        directory.mkdir(parents=True)
        node = private_files_of_a_process(tmp_path, linger=True)
        await until(lambda: len(list(private_root(tmp_path).glob("*/knife.rb"))) == 1, "files")
        read_end, write_end = os.pipe()
        os.close(write_end)  # end-of-file while the "node" still runs
        try:
            reaping = asyncio.create_task(
                asyncio.to_thread(guard, read_end, directory, 30, node.pid)
            )
            await asyncio.sleep(0.3)  # the guardian is waiting: nothing may be removed yet
            assert private_entries(tmp_path) != []
            node.kill()
            node.wait()
            await reaping
        finally:
            os.close(read_end)
        assert private_entries(tmp_path) == []

    async def test_a_node_that_dismisses_it_is_not_waited_for(
        self, directory: Path, tmp_path: Path
    ) -> None:
        directory.mkdir(parents=True)
        node = private_files_of_a_process(tmp_path, linger=True)
        await until(lambda: len(list(private_root(tmp_path).glob("*/knife.rb"))) == 1, "files")
        read_end, write_end = os.pipe()
        os.write(write_end, DISMISSED)
        os.close(write_end)
        try:
            await asyncio.to_thread(guard, read_end, directory, 30, node.pid)
            assert private_entries(tmp_path) != [], "the node lives: its files are kept"
        finally:
            os.close(read_end)
            node.kill()
            node.wait()


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


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


class TestTheGuardianOfANodeThatIsGone:
    async def test_kills_each_recorded_group_whole(
        self,
        registry: GroupRegistry,
        directory: Path,
        spawn: Spawn,
        guardians: SpawnGuardian,
        guardian_log: GuardianLog,
    ) -> None:
        leader, grandchild = await spawn(JOB_ID)
        registry.record(leader.pid, JOB_ID)
        guardian = guardians(directory)
        node_died(registry, guardian)
        assert guardian.process.returncode == 0
        assert await gone([leader.pid, grandchild])
        assert records(directory) == []
        [reaped] = guardian_log.named("orphans.reaped")
        assert (reaped["job_id"], reaped["pgid"], reaped["reaper"]) == (
            JOB_ID,
            leader.pid,
            "guardian",
        )

    async def test_waits_for_the_lock_the_dying_node_still_holds(
        self,
        registry: GroupRegistry,
        directory: Path,
        spawn: Spawn,
        guardians: SpawnGuardian,
        guardian_log: GuardianLog,
    ) -> None:
        """A dead node's descriptors close one by one: the pipe's end-of-file may come first."""
        leader, grandchild = await spawn(JOB_ID)
        registry.record(leader.pid, JOB_ID)
        guardian = guardians(directory)
        dismissed = asyncio.create_task(asyncio.to_thread(guardian.dismiss))
        await until(
            lambda: guardian_log.named("guardian.lock_held"), "the guardian to find the lock held"
        )
        registry.close()
        await dismissed
        assert await gone([leader.pid, grandchild])
        assert [entry["pgid"] for entry in guardian_log.named("orphans.reaped")] == [leader.pid]

    async def test_with_no_record_kills_nothing(
        self,
        registry: GroupRegistry,
        directory: Path,
        spawn: Spawn,
        guardians: SpawnGuardian,
        guardian_log: GuardianLog,
    ) -> None:
        """A clean stop: every job ended and took its record with it."""
        leader, grandchild = await spawn(JOB_ID)
        with registry.recording(JOB_ID) as record:
            record(leader.pid)
        guardian = guardians(directory)
        node_died(registry, guardian)
        assert guardian.process.returncode == 0
        assert alive(leader.pid) and alive(grandchild)
        assert guardian_log.named("orphans.reaped") == []

    async def test_is_not_stopped_by_a_stop_sent_to_every_process(
        self,
        registry: GroupRegistry,
        directory: Path,
        spawn: Spawn,
        guardians: SpawnGuardian,
    ) -> None:
        """A shutdown or a service manager: the node may drain its jobs for a while yet."""
        leader, grandchild = await spawn(JOB_ID)
        registry.record(leader.pid, JOB_ID)
        guardian = guardians(directory)
        stops = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        await until(lambda: ignores(guardian.process.pid, stops), "the guardian to be ready")
        assert os.getsid(guardian.process.pid) == guardian.process.pid  # not in the node's group
        for signum in stops:
            guardian.process.send_signal(signum)
        node_died(registry, guardian)
        assert guardian.process.returncode == 0
        assert await gone([leader.pid, grandchild])

    async def test_leaves_the_records_to_a_node_that_started_again(
        self, registry: GroupRegistry, directory: Path, spawn: Spawn
    ) -> None:
        """Late: the restarted node holds the lock, and its records are its live jobs'."""
        leader, grandchild = await spawn(JOB_ID)
        registry.record(leader.pid, JOB_ID)
        read_end, write_end = os.pipe()
        os.close(write_end)
        try:
            assert guard(read_end, directory, patience=0.1) == []
        finally:
            os.close(read_end)
        assert alive(leader.pid) and alive(grandchild)
        assert records(directory) == [str(leader.pid)]

    async def test_sees_its_node_go_even_while_a_job_the_node_started_runs(
        self, directory: Path, guardians: SpawnGuardian, tmp_path: Path
    ) -> None:
        """No job holds the node's end of the pipe: it would keep the guardian from ever
        seeing its node go."""
        guardian = guardians(directory)
        pid_file, release = tmp_path / "job.pids", tmp_path / "job.release"
        job = asyncio.create_task(
            asyncio.to_thread(
                run_process,
                [sys.executable, str(SLEEPER), "--pids", str(pid_file), "--until", str(release)],
                env={"PATH": os.environ["PATH"]},
                cwd=None,
                timeout=60,
                kill_grace=1,
                control=JobControl(),
                sink=LogStream(lambda lines: None, ()),
            )
        )
        try:
            await wait_for_file(pid_file, unless=job.done)
            await asyncio.to_thread(guardian.dismiss)
            assert guardian.process.returncode == 0
            assert not job.done()
        finally:
            release.touch()
            result: ProcessResult = await job
        assert result.ending is Ending.EXITED


class TestANodeWithoutAGuardian:
    async def test_starts_and_warns_when_the_guardian_cannot_be_spawned(
        self,
        rabbit: Bus,
        start_herk: Callable[..., Awaitable[HerkNode]],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(sys, "executable", "/nonexistent/python")
        with structlog.testing.capture_logs() as entries:
            node = await start_herk(rabbit, workers=1)
        assert node.master is not None and node.heartbeat().workers == 1
        assert [entry["event"] for entry in entries if entry["log_level"] == "warning"] == [
            "herk.no_guardian"
        ]
