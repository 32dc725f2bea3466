"""``megam up`` as people really run it: twice on the same data dir, with a broken demo step,
and with its output piped into a reader that goes away."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.e2e.conftest import MEGAM, Processes, stop_local_nodes, wait_http
from tests.e2e.test_embedded import wait_for_output


class TestRunningTheReadmesFirstCommandAgain:
    def test_a_second_demo_reuses_the_account_and_the_node_and_keeps_serving(
        self, processes: Processes
    ) -> None:
        first = processes.start("first", "up", "--demo")
        wait_for_output(processes, "first", "demo1.megam.local: RUNNING", first)
        created = processes.cli("accounts", "create", "you@example.com")  # as "Using it" says
        assert created.returncode == 0, created.stderr
        assert processes.stop(first, signal.SIGINT) == 0, processes.log("first")

        second = processes.start("second", "up", "--demo")
        output = wait_for_output(processes, "second", "not launching another", second)
        assert "demo1.megam.local is already RUNNING" in output, output
        assert "ApiError" not in output and "Traceback" not in output, output
        wait_http(processes.env["MEGAM_URL"] + "/healthz")
        assert second.poll() is None, "gateway, herk and uid are still running"

        nodes = processes.cli("--profile", "demo", "nodes", "list")
        assert nodes.stdout.count("demo1.megam.local") == 1, nodes.stdout
        assert "demo2" not in nodes.stdout, "the demo node is shown again, not launched again"
        assert processes.stop(second, signal.SIGINT) == 0, processes.log("second")

    def test_up_without_demo_runs_any_number_of_times(self, processes: Processes) -> None:
        for run in ("one", "two", "three"):
            up = processes.start(run, "up", "--workers", "1")
            wait_for_output(processes, run, "megam is up", up)
            assert processes.stop(up) == 0, processes.log(run)


class TestTheLocalOwnerIsAnOperator:
    def test_the_demo_account_runs_the_cluster_without_megam_admin_emails(
        self, processes: Processes
    ) -> None:
        assert "MEGAM_ADMIN_EMAILS" not in processes.env
        up = processes.start("up", "up", "--demo")
        output = wait_for_output(processes, "up", "demo1.megam.local: ", up)
        assert "operator  demo@megam.local" in output, output
        status = processes.cli("cluster", "status")
        assert status.returncode == 0, status.stderr
        assert "queue depth" in status.stdout

    def test_a_saved_profile_for_this_gateway_becomes_operator_at_the_next_start(
        self, processes: Processes
    ) -> None:
        up = processes.start("first", "up")
        wait_for_output(processes, "first", "megam is up", up)
        assert processes.cli("accounts", "create", "owner@example.com").returncode == 0
        refused = processes.cli("cluster", "status")
        assert refused.returncode == 1 and "operator" in refused.stderr, refused
        assert processes.stop(up) == 0

        again = processes.start("again", "up")
        output = wait_for_output(processes, "again", "megam is up", again)
        assert "operator  owner@example.com" in output, output
        assert processes.cli("cluster", "status").returncode == 0


class TestAFailingDemoStepNeverStopsTheServices:
    def test_an_unreadable_credentials_file_fails_the_demo_not_the_platform(
        self, processes: Processes
    ) -> None:
        path = processes.env["MEGAM_CREDENTIALS"]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as garbage:
            garbage.write(b"\x00\xffnot json")
        up = processes.start("up", "up", "--demo")
        output = wait_for_output(processes, "up", "the services keep running", up)
        assert "not a credentials file" in output, output
        assert "Traceback" not in output, output
        wait_http(processes.env["MEGAM_URL"] + "/healthz")
        assert up.poll() is None
        assert processes.stop(up, signal.SIGINT) == 0, processes.log("up")


class TestStoppingWhenTheOutputReaderIsGone:
    @pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
    def test_a_signal_stops_up_after_its_pipe_closed(
        self, megam_env: dict[str, str], sig: signal.Signals
    ) -> None:
        """``megam up 2>&1 | head -1``: the reader takes one line and exits."""
        reader, writer = os.pipe()
        up = subprocess.Popen(
            [MEGAM, "up", "--demo"], env=megam_env, stdout=writer, stderr=writer
        )
        os.close(writer)
        try:
            assert os.read(reader, 1), "the first line arrives"
            os.close(reader)
            wait_http(megam_env["MEGAM_URL"] + "/healthz")
            up.send_signal(sig)
            assert up.wait(60) == 0
        finally:
            if up.poll() is None:
                up.kill()
                up.wait()
            stop_local_nodes(Path(megam_env["MEGAM_DATA_DIR"]))

    def test_json_logs_are_the_default_when_stderr_is_not_a_terminal(
        self, processes: Processes
    ) -> None:
        up = processes.start("up", "up")
        wait_for_output(processes, "up", "megam is up", up)
        assert processes.stop(up) == 0
        events = [
            orjson.loads(line)
            for line in processes.log("up").splitlines()
            if line.startswith("{")
        ]
        assert any(event["event"] == "megam.up" for event in events)


class TestOutputForAPersonAtATerminal:
    @pytest.mark.parametrize("json_flag", [False, True], ids=["default", "--log-json"])
    def test_logs_are_readable_lines_on_a_terminal_unless_json_is_asked(
        self, megam_env: dict[str, str], json_flag: bool
    ) -> None:
        args = [MEGAM, "up", "--workers", "1", *(["--log-json"] if json_flag else [])]
        output = run_on_a_terminal(args, megam_env, until="megam is up")
        started = [line for line in output.splitlines() if "megam.up" in line]
        assert started, output
        assert started[0].lstrip().startswith("{") is json_flag, output
        assert "console   http://127.0.0.1:" in output


def run_on_a_terminal(args: list[str], env: dict[str, str], *, until: str) -> str:
    """Run ``args`` with a pseudo-terminal as stdout and stderr until ``until`` is printed."""
    import pty
    import select
    import time

    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, env=env, stdout=follower, stderr=follower)
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while until.encode() not in seen and time.monotonic() < deadline:
            if select.select([leader], [], [], 1)[0]:
                seen += os.read(leader, 65536)
        proc.send_signal(signal.SIGINT)
        while proc.poll() is None and select.select([leader], [], [], 1)[0]:
            try:
                seen += os.read(leader, 65536)
            except OSError:  # the terminal is gone with the process
                break
        assert proc.wait(60) == 0, seen.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    return seen.decode(errors="replace")
