"""``megam up`` on embedded defaults stopped mid-burst and started again on the same data dir:
nothing the gateway accepted is lost, whether the stop was a Ctrl-C or a SIGKILL."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from megam_cli.client import ApiClient
from tests.e2e.conftest import Processes, free_port, saved_account, wait_http

LAUNCHES = 20
BEHIND_ONE_WORKER = 12
"""Enough launches for the last to wait for seconds behind one worker (each takes about one)."""
TERMINAL = {"succeeded", "failed", "timed_out", "cancelled", "interrupted", "rejected"}


@pytest.fixture
def up_again(processes: Processes) -> Iterator[Processes]:
    """A signed-up account with the local cloud, on a ``megam up`` started for it."""
    processes.start("up", "up", "--workers", "4")
    wait_http(processes.env["MEGAM_URL"] + "/healthz")
    assert processes.cli("accounts", "create", "burst@megam.io").returncode == 0
    assert processes.cli("clouds", "add", "home", "--provider", "local").returncode == 0
    yield processes
    delete_every_node(processes)


@pytest.mark.parametrize(
    "stops",
    [[signal.SIGINT], [signal.SIGKILL], [signal.SIGKILL, signal.SIGKILL]],
    ids=["sigint", "sigkill", "sigkill-again-while-recovering"],
)
def test_a_restart_mid_burst_loses_no_launch(up_again: Processes, stops: list[int]) -> None:
    procs = up_again
    asyncio.run(launch_burst(procs, LAUNCHES))
    for number, stop in enumerate(stops):
        time.sleep(1.0)
        procs.stop(procs.running[-1], stop)
        procs.start(f"up-again-{number}", "up", "--workers", "4")
        wait_http(procs.env["MEGAM_URL"] + "/healthz")
    nodes = wait_until_settled(procs, LAUNCHES)
    assert {node["status"] for node in nodes} == {"RUNNING"}, summary(nodes)

    for job in asyncio.run(create_jobs(procs)):
        endings = [entry["state"] for entry in job["history"] if entry["state"] in TERMINAL]
        assert endings == ["succeeded"], (job["id"], job["history"])


def test_after_a_kill_the_waiting_jobs_are_in_the_queue_and_a_cancel_ends_one(
    processes: Processes,
) -> None:
    """One worker, a burst behind it, a SIGKILL and a start again: ``cluster status`` counts the
    requests waiting, and ``jobs cancel`` on the last one returns and ends it ``cancelled``."""
    processes.env["MEGAM_ADMIN_EMAILS"] = "ops@megam.io"
    processes.start("up", "up", "--workers", "1")
    wait_http(processes.env["MEGAM_URL"] + "/healthz")
    assert processes.cli("accounts", "create", "ops@megam.io").returncode == 0
    assert processes.cli("clouds", "add", "home", "--provider", "local").returncode == 0
    asyncio.run(launch_burst(processes, BEHIND_ONE_WORKER))
    processes.stop(processes.running[0], signal.SIGKILL)
    processes.start("up-again", "up", "--workers", "1")
    wait_http(processes.env["MEGAM_URL"] + "/healthz")

    status = processes.cli("cluster", "status")
    depth = re.search(r"queue depth (\d+)", status.stdout)
    assert depth and int(depth.group(1)) > 0, status.stdout + status.stderr

    last = max(asyncio.run(create_jobs(processes)), key=lambda job: job["id"])
    cancel = processes.cli("jobs", "cancel", last["id"], timeout=30)
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    ended = wait_for_job(processes, last["id"])
    assert ended["state"] == "cancelled", ended
    assert "running" not in [entry["state"] for entry in ended["history"]], ended["history"]
    wait_until_settled(processes, BEHIND_ONE_WORKER)
    delete_every_node(processes)


def test_a_second_megam_up_on_the_same_data_dir_is_refused(processes: Processes) -> None:
    first = processes.start("up", "up")
    wait_http(processes.env["MEGAM_URL"] + "/healthz")
    second = processes.start(
        "second",
        "up",
        MEGAM_PORT=str(free_port()),
        MEGAM_UID_PORT=str(free_port()),
        MEGAM_HERK_METRICS_PORT=str(free_port()),
    )
    assert second.wait(60) != 0
    assert "is in use by another process (pid " in processes.log("second")
    assert first.poll() is None, "the first one runs on"


async def launch_burst(procs: Processes, count: int) -> None:
    async with client(procs) as api:
        await asyncio.gather(
            *(
                api.post(
                    "/v1/nodes/content",
                    {"node_name": f"burst{n}.megam.local", "predefcloud": "home", "run_list": []},
                )
                for n in range(count)
            )
        )


def wait_until_settled(procs: Processes, count: int, timeout: float = 240) -> list[Any]:
    """The nodes once every one of them has left LAUNCHING (or the last answer at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = asyncio.run(get(procs, "/v1/nodes"))["results"]
        launching = [n for n in nodes if n["status"] not in ("RUNNING", "NOTRUNNING")]
        if (len(nodes) == count and not launching) or time.monotonic() > deadline:
            return nodes
        time.sleep(1)


def wait_for_job(procs: Processes, job_id: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        job = asyncio.run(get(procs, f"/v1/jobs/{job_id}"))
        if job["state"] in TERMINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.5)


async def create_jobs(procs: Processes) -> list[Any]:
    jobs = (await get(procs, "/v1/requests"))["results"]
    return [job for job in jobs if job["req_type"] == "create"]


async def get(procs: Processes, path: str) -> Any:
    async with client(procs) as api:
        return await api.get(path)


def client(procs: Processes) -> ApiClient:
    stored = saved_account(procs)
    return ApiClient(procs.env["MEGAM_URL"], stored["email"], stored["api_key"])


def summary(nodes: list[Any]) -> str:
    return ", ".join(f"{n['node_name']}={n['status']}" for n in nodes)


def delete_every_node(procs: Processes) -> None:
    """The local cloud's nodes are real processes: stop them with the test."""
    listed = procs.cli("nodes", "list")
    for name in re.findall(r"^(burst\d+\.megam\.local)", listed.stdout, re.M):
        procs.cli("nodes", "delete", name, "--follow", timeout=60)

