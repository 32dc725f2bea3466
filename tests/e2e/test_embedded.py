"""``megam up`` on embedded defaults: one process, in-process bus, SQLite, no external service."""

from __future__ import annotations

import signal
import subprocess
import time

from tests.e2e import flows
from tests.e2e.conftest import Processes, wait_http


def test_a_user_launches_follows_and_deletes_a_local_node(processes: Processes) -> None:
    up = processes.start("up", "up", "--workers", "2")
    wait_http(processes.env["MEGAM_URL"] + "/healthz")
    measured = flows.launch_and_delete_a_local_node(processes, "ada@megam.io")
    flows.other_tenant_sees_nothing(processes)
    flows.report("embedded", measured)
    assert processes.stop(up) == 0, processes.log("up")
    log = processes.log("up")
    assert '"megam.up"' in log and '"bus":"embedded"' in log


def test_the_readme_demo_launches_a_node_and_shows_it_running(processes: Processes) -> None:
    up = processes.start("demo", "up", "--demo")
    output = wait_for_output(processes, "demo", "demo1.megam.local: ", up)
    assert "demo1.megam.local: RUNNING" in output, output
    assert "[demo1.megam.local]" in output, "the demo prints the node's live log"
    assert processes.stop(up, signal.SIGINT) == 0


def wait_for_output(
    processes: Processes, name: str, text: str, proc: subprocess.Popen[bytes], timeout: float = 120
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        output = processes.log(name)
        if text in output:
            time.sleep(0.5)  # let the rest of the line arrive
            return processes.log(name)
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared:\n{processes.log(name)}")
