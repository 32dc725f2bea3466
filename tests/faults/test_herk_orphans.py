"""A herk node SIGKILLed while a job runs leaves none of the job's processes behind: the node's
guardian kills the job's whole process group the moment the node dies (herk.guardian), and if
the guardian died too, the node kills it when it starts again, before it takes any work
(herk.orphans)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from herk.orphans import groups_directory
from herk.provision.local import alive
from megam.bus.amqp import AmqpBus
from tests.faults.faultkit import HerkProcesses, new_request, submit
from tests.herk.herk_testkit import (
    kill_quietly,
    read_pids,
    sleeper_actor,
    until,
    wait_dead,
    wait_for_file,
)


@pytest.fixture
def job_pids() -> Iterator[list[int]]:
    """Every job process a test saw; whatever a failed test left running is killed."""
    pids: list[int] = []
    yield pids
    kill_quietly(pids)


async def started_job(
    broker: AmqpBus, nodes: HerkProcesses, job_type: str, pids: list[int]
) -> tuple[Path, int, int]:
    """Submit a sleeper job to the ``victim`` node; its pid file, main process and grandchild
    once both run."""
    [request] = await submit(broker, [new_request(job_type, 0)])
    pid_file = nodes.data_dir / f"{request.job_id}.pids"
    await wait_for_file(pid_file, timeout=60, unless=lambda: not nodes.alive("victim"))
    leader, grandchild = read_pids(pid_file)
    pids.extend([leader, grandchild])
    return pid_file, leader, grandchild


def guardian_of(herk: int) -> int:
    """The pid of the herk node's guardian, its child running ``herk.guardian``."""
    [guardian] = [
        int(name)
        for name in os.listdir("/proc")
        if name.isdigit() and parent(int(name)) == herk and b"herk.guardian" in cmdline(int(name))
    ]
    return guardian


def parent(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:"))


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


async def test_the_guardian_kills_the_whole_group_when_the_node_dies(
    broker: AmqpBus, herk_nodes: HerkProcesses, actors: Path, job_pids: list[int]
) -> None:
    sleeper_actor(actors, "fault.hang", idempotent=False, timeout=300)
    herk_nodes.start("victim", workers=1)
    pid_file, leader, grandchild = await started_job(broker, herk_nodes, "fault.hang", job_pids)
    record = groups_directory(herk_nodes.data_dir, "victim") / str(leader)
    await until(record.exists, "the job's process group to be recorded")

    herk_nodes.kill("victim")  # and not started again

    assert await wait_dead([leader, grandchild], timeout=30) == [], "the job outlived the node"
    await until(lambda: herk_nodes.logged("victim", "orphans.reaped"), "the reap to be logged")
    [reaped] = herk_nodes.logged("victim", "orphans.reaped")
    assert (reaped["job_id"], reaped["pgid"], reaped["reaper"]) == (
        pid_file.stem,
        leader,
        "guardian",
    )
    assert not record.exists()


async def test_a_node_killed_with_its_guardian_kills_the_group_when_it_starts_again(
    broker: AmqpBus, herk_nodes: HerkProcesses, actors: Path, job_pids: list[int]
) -> None:
    sleeper_actor(actors, "fault.hang", idempotent=False, timeout=300)
    herk_nodes.start("victim", workers=1)
    pid_file, leader, grandchild = await started_job(broker, herk_nodes, "fault.hang", job_pids)
    record = groups_directory(herk_nodes.data_dir, "victim") / str(leader)
    await until(record.exists, "the job's process group to be recorded")

    os.kill(guardian_of(herk_nodes.processes["victim"].pid), signal.SIGKILL)
    await until(lambda: herk_nodes.logged("victim", "herk.guardian_lost"), "the loss to be logged")
    herk_nodes.kill("victim")

    assert alive(leader) and alive(grandchild)  # nobody left to reap them: the restart does
    assert record.exists()

    herk_nodes.start("victim", workers=1)

    assert await wait_dead([leader, grandchild], timeout=60) == [], "the restart left the job"
    await until(lambda: herk_nodes.logged("victim", "orphans.reaped"), "the reap to be logged")
    [reaped] = herk_nodes.logged("victim", "orphans.reaped")
    assert (reaped["job_id"], reaped["pgid"], reaped["reaper"]) == (pid_file.stem, leader, "node")
    assert not record.exists()


async def test_a_job_given_back_by_the_killed_node_runs_again_only_after_its_leftovers_died(
    broker: AmqpBus, herk_nodes: HerkProcesses, actors: Path, job_pids: list[int]
) -> None:
    sleeper_actor(actors, "fault.hang_safe", idempotent=True, timeout=300)
    herk_nodes.start("victim", workers=1)
    pid_file, leader, grandchild = await started_job(
        broker, herk_nodes, "fault.hang_safe", job_pids
    )
    await until(
        groups_directory(herk_nodes.data_dir, "victim").joinpath(str(leader)).exists,
        "the job's process group to be recorded",
    )

    herk_nodes.kill("victim")
    herk_nodes.start("victim", workers=1)  # the broker gives the held job back to it

    await until(lambda: read_pids(pid_file) != [leader, grandchild], "the job to run again", 60)
    job_pids.extend(read_pids(pid_file))
    assert not alive(grandchild), "the rerun overlapped the first run's leftovers"
