"""Hostile cloud secrets through the whole platform (``megam up``, embedded bus, SQLite), searched
for afterwards everywhere a user or an operator could find them: the ``--follow`` output, the
log API and the CLI's logs, log search, every API answer about the node and its job, the
SQLite store file and its WAL, and every other file under the data dir and TMPDIR.

The fake knife (``MEGAM_FAKE_DEBUG=2``) prints every setting it loaded and its config and
credentials files as they are on disk, so each secret reaches the log stream raw, Ruby-escaped
and, for google_json, as many lines. tests/hostile_secrets.py searches every form.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from megam_cli.client import ApiClient
from tests.e2e.conftest import Processes, saved_account, wait_http
from tests.herk.herk_testkit import FAKES
from tests.hostile_secrets import GOOGLE_JSON, HOSTILE, found_in, found_in_files

EC2_SECRETS = {
    "aws_access_key_id": HOSTILE["quotes"],
    "aws_secret_access_key": HOSTILE["backslashes"],
    "extra_unicode": HOSTILE["unicode"],
    "extra_newlines": HOSTILE["newlines"],
    "extra_output_word": HOSTILE["substring_of_output"],
}
GOOGLE_SECRETS = {
    "gce_project": "megam-hostile-project",
    "google_json": GOOGLE_JSON,
    # In both clouds: a word of ordinary output is masked only in the jobs whose secret it is.
    "extra_output_word": HOSTILE["substring_of_output"],
}
ALL_SECRETS = [*EC2_SECRETS.values(), *GOOGLE_SECRETS.values()]


@pytest.fixture
def hostile_up(processes: Processes, tmp_path: Path) -> Processes:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    processes.env.update(
        PATH=f"{FAKES}:{processes.env['PATH']}",
        MEGAM_HERK_PASSENV="MEGAM_FAKE_*",
        MEGAM_FAKE_DEBUG="2",
        TMPDIR=str(tmpdir),
    )
    processes.start("up", "up", "--workers", "2")
    wait_http(processes.env["MEGAM_URL"] + "/healthz")
    created = processes.cli("accounts", "create", "eve@megam.io")
    assert created.returncode == 0, created.stderr
    return processes


def api_client(procs: Processes) -> ApiClient:
    stored = saved_account(procs)
    return ApiClient(procs.env["MEGAM_URL"], stored["email"], stored["api_key"])


async def add_clouds(procs: Processes) -> None:
    async with api_client(procs) as api:
        await api.post(
            "/v1/predefclouds/content",
            {
                "name": "aws",
                "spec": {"type_name": "ec2", "image": "ami-0abc1234", "flavor": "t3.micro"},
                "access": {"region": "eu-west-1"},
                "credentials": EC2_SECRETS,
            },
        )
        await api.post(
            "/v1/predefclouds/content",
            {
                "name": "gce",
                "spec": {"type_name": "google", "image": "debian-12", "flavor": "e2-small"},
                "access": {"zone": "europe-west1-b"},
                "credentials": GOOGLE_SECRETS,
            },
        )


async def api_answers(procs: Processes, nodes: list[str], job_ids: list[str]) -> str:
    async with api_client(procs) as api:
        answers: list[Any] = [await api.get("/v1/nodes"), await api.get("/v1/predefclouds")]
        for node in nodes:
            answers += [await api.get(f"/v1/nodes/{node}"), await api.get(f"/v1/nodes/{node}/logs")]
        for job_id in job_ids:
            answers.append(await api.get(f"/v1/jobs/{job_id}"))
        for words in ("DEBUG", "knife", "google.json", "Bootstrapping", "****"):
            answers.append(await api.get("/v1/logs/search", q=words))
    return json.dumps(answers)


def test_no_hostile_secret_is_found_anywhere_after_launches(
    hostile_up: Processes, tmp_path: Path
) -> None:
    procs = hostile_up
    asyncio.run(add_clouds(procs))
    shown = []
    for cloud, name in (("aws", "ec2.hostile.io"), ("gce", "gce.hostile.io")):
        launch = procs.cli("nodes", "launch", name, "--cloud", cloud, "--follow")
        assert launch.returncode == 0, launch.stdout + launch.stderr
        assert "DEBUG: knife.rb: knife[:aws_secret_access_key]" in launch.stdout or cloud == "gce"
        assert "****" in launch.stdout, "the secrets were printed, masked"
        shown.append(launch.stdout + launch.stderr)
    nodes = ["ec2.hostile.io", "gce.hostile.io"]  # the CLI keeps the names as typed
    for node in nodes:
        logs = procs.cli("logs", node)
        assert logs.returncode == 0 and "DEBUG:" in logs.stdout, logs.stderr
        shown.append(logs.stdout)
        node_show = procs.cli("nodes", "show", node)
        shown.append(node_show.stdout)
    found = procs.cli("search", "DEBUG")
    assert found.returncode == 0 and "knife" in found.stdout, found.stderr
    shown.append(found.stdout)
    job_ids = sorted(set(re.findall(r"RIP\d+", "\n".join(shown))))
    assert len(job_ids) >= 2, shown
    shown.append(asyncio.run(api_answers(procs, nodes, job_ids)))

    assert [found_in(answer, ALL_SECRETS) for answer in shown] == [[]] * len(shown), shown
    data_dir = Path(procs.env["MEGAM_DATA_DIR"])
    assert any(path.name.endswith("-wal") for path in data_dir.rglob("*")), "the WAL is searched"
    assert found_in_files(data_dir, ALL_SECRETS) == {}, "while running: the store and its WAL"
    assert found_in_files(tmp_path / "tmp", ALL_SECRETS) == {}
    assert procs.stop(procs.running[0]) == 0
    assert found_in_files(data_dir, ALL_SECRETS) == {}
    assert found_in(procs.log("up"), ALL_SECRETS) == [], "nor in the services' own log"
