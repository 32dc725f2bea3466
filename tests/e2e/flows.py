"""The user's journey, shared by the embedded and the RabbitMQ end-to-end tests."""

from __future__ import annotations

import os
import re
import time
import urllib.request

from tests.e2e.conftest import Processes

NODE_URL = re.compile(r"http://127\.0\.0\.1:\d+/?")


def launch_and_delete_a_local_node(procs: Processes, email: str) -> dict[str, float]:
    """Sign up, add the local cloud, launch a node and follow it, then delete it.

    Returns how long the launch took, for the closing note.
    """
    created = procs.cli("accounts", "create", email)
    assert created.returncode == 0, created.stderr
    cloud = procs.cli("clouds", "add", "home", "--provider", "local")
    assert cloud.returncode == 0, cloud.stderr

    started = time.monotonic()
    launch = procs.cli(
        "nodes",
        "launch",
        "web.megam.local",
        "--cloud",
        "home",
        "--runlist",
        "role[web],recipe[hello]",
        "--follow",
    )
    launch_seconds = time.monotonic() - started
    assert launch.returncode == 0, launch.stdout + launch.stderr
    assert "[web.megam.local]" in launch.stdout, "live log lines are printed, prefixed by node"
    assert "web.megam.local: RUNNING" in launch.stdout

    listed = procs.cli("nodes", "list")
    assert re.search(r"web\.megam\.local\s+RUNNING", listed.stdout), listed.stdout

    logs = procs.cli("logs", "web.megam.local")
    assert logs.returncode == 0 and logs.stdout.strip(), logs.stderr
    node_url = NODE_URL.search(logs.stdout)
    assert node_url, f"the local node says where it serves:\n{logs.stdout}"
    with urllib.request.urlopen(node_url.group(0), timeout=5) as resp:
        assert resp.status == 200, "the node is a real process answering HTTP"

    metrics = wait_for_cli(
        procs, ("nodes", "metrics", "web.megam.local"), lambda out: "http_requests_per_min" in out
    )
    assert "proc_rss_bytes" in metrics and "load_one" in metrics, "sampled by the herk host"

    shown = procs.cli("nodes", "show", "web.megam.local")
    assert "succeeded" in shown.stdout, shown.stdout
    job_id = re.search(r"RIP\d+", shown.stdout)
    assert job_id, shown.stdout
    job = procs.cli("jobs", "show", job_id.group(0))
    assert re.search(r"queued.*\n.*running.*\n.*succeeded", job.stdout), job.stdout

    found = procs.cli("search", "running", "--node", "web.megam.local")
    assert found.returncode == 0 and "is running at http://127.0.0.1:" in found.stdout, found

    deleted = procs.cli("nodes", "delete", "web.megam.local", "--follow")
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert "web.megam.local: DELETED" in deleted.stdout
    try:
        urllib.request.urlopen(node_url.group(0), timeout=2)
        raise AssertionError("the node's process still answers after delete")
    except OSError:
        pass
    return {"launch_seconds": launch_seconds}


def other_tenant_sees_nothing(procs: Processes) -> None:
    env_backup = procs.env
    procs.env = {**env_backup, "MEGAM_CREDENTIALS": env_backup["MEGAM_CREDENTIALS"] + ".b"}
    try:
        assert procs.cli("accounts", "create", "other@tenant.io").returncode == 0
        listed = procs.cli("nodes", "list")
        assert "web.megam.local" not in listed.stdout
        assert procs.cli("logs", "web.megam.local").returncode != 0
    finally:
        procs.env = env_backup


def report(name: str, measured: dict[str, float]) -> None:
    """Measurements go to a file the closing note quotes (no timing is asserted)."""
    out = os.environ.get("MEGAM_E2E_REPORT")
    if out:
        with open(out, "a") as handle:
            handle.write(f"{name} {measured}\n")


def wait_for_cli(procs: Processes, args: tuple[str, ...], ready, timeout: float = 60) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = procs.cli(*args)
        if ready(result.stdout):
            return result.stdout
        if time.monotonic() > deadline:
            raise AssertionError(f"{args} never ready:\n{result.stdout}\n{result.stderr}")
        time.sleep(0.3)
