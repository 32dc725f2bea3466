"""The local cloud, end to end through herk: a node launched and deleted for real on this host."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

from herk_testkit import EventLog, alive, job_request, submit, wait_dead

from herk.plans import node_home
from megam.bus import Bus


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


class TestLaunchAndDelete:
    async def test_create_runs_a_real_node_and_delete_stops_it(
        self, bus: Bus, events: EventLog, start_herk, tmp_path: Path
    ) -> None:
        herk = await start_herk(bus)
        create = await submit(
            bus, job_request("local.create", {"run_list": ["role[web]", "recipe[nginx::default]"]})
        )

        done = await events.terminal(create.job_id)
        assert done.state == "succeeded", done.reason
        assert events.states(create.job_id) == ["running", "succeeded"]
        assert done.herk == herk.name and done.correlation_id == create.correlation_id

        lines = events.lines(create.job_id)
        assert [line.seq for line in lines] == list(range(1, len(lines) + 1))
        text = events.text(create.job_id)
        assert "applied role[web]" in text and "applied recipe[nginx::default]" in text
        assert "is running at http://127.0.0.1:" in text

        home = node_home(tmp_path / "data", create.account, create.node)
        port = int((home / "run" / "port").read_text())
        pid = int((home / "run" / "pid").read_text())
        assert "server accepts handled requests" in _get(f"http://127.0.0.1:{port}/nginx_status")
        assert "role[web]" in _get(f"http://127.0.0.1:{port}/run_list/role-web.txt")

        delete = await submit(bus, job_request("local.delete", node=create.node))
        gone = await events.terminal(delete.job_id)
        assert gone.state == "succeeded", gone.reason
        assert await wait_dead([pid]) == []
        assert not home.exists()
        assert "node web1.megam.co deleted" in events.text(delete.job_id)

    async def test_creating_a_running_node_again_leaves_it_running(
        self, bus: Bus, events: EventLog, start_herk, tmp_path: Path
    ) -> None:
        await start_herk(bus)
        first = await submit(bus, job_request("local.create", {"run_list": []}))
        assert (await events.terminal(first.job_id)).state == "succeeded"
        home = node_home(tmp_path / "data", first.account, first.node)
        pid = int((home / "run" / "pid").read_text())

        again = await submit(bus, job_request("local.create", {"run_list": []}))
        assert (await events.terminal(again.job_id)).state == "succeeded"
        assert "is already running" in events.text(again.job_id)
        assert int((home / "run" / "pid").read_text()) == pid and alive(pid)

        delete = await submit(bus, job_request("local.delete"))
        assert (await events.terminal(delete.job_id)).state == "succeeded"
        assert await wait_dead([pid]) == []


class TestDeleteWhenAlreadyGone:
    def test_says_so_and_succeeds(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "herk.provision.local",
                "delete",
                "--node",
                "gone.megam.co",
                "--home",
                str(tmp_path / "nowhere"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0
        assert "nothing to delete" in result.stdout
