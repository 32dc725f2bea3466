"""A 75 s partition in the middle of a ``knife.create``, with real processes: uid and gateway on
RabbitMQ, one herk node reaching it only through a TCP proxy that cuts its connections and
refuses new ones for 75 s (the shared broker is untouched). The cut outlasts the gateway's
default silence limit (60 s, twice the AMQP heartbeat timeout), so through the API the job is
first ``herk_node_unreachable``, then presumed ``interrupted`` (node NOTRUNNING). The fake knife
exits 0 on the cut node meanwhile; at the heal the node's buffered outcome replaces the
presumption: the job ends ``succeeded``, once, its knife ran once, the node is RUNNING.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.options import GatewayOptions
from megam_cli.client import ApiClient
from tests.e2e.conftest import (
    Processes,
    free_port,
    megam_environment,
    saved_account,
    wait_http,
)
from tests.faults.faultkit import REPO
from tests.faults.tcp_proxy import TcpProxy

CUT_SECONDS = 75
PROGRESS_LINES = 30
"""One a second: the knife starts before the cut and exits 0 during it."""
JOB_ID = re.compile(r"RIP\d+")


@pytest.fixture
async def proxy(amqp_url: str) -> AsyncIterator[TcpProxy]:
    relay = await TcpProxy.start(amqp_url)
    yield relay
    await relay.close()


@pytest.fixture
def services(amqp_url: str, tmp_path: Path) -> Iterator[Processes]:
    env = megam_environment(tmp_path)
    env["MEGAM_AMQP_URL"] = amqp_url
    (tmp_path / "logs").mkdir()
    procs = Processes(env, tmp_path / "logs")
    try:
        yield procs
    finally:
        with contextlib.suppress(Exception):
            procs.stop_all()


def knife_runs(argv_log: Path) -> int:
    return len(argv_log.read_text().splitlines()) if argv_log.exists() else 0


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.5)
    return found


async def started(procs: Processes, proxy: TcpProxy, argv_log: Path) -> None:
    # the proxy runs on this loop: whatever waits for the services runs in a thread
    procs.start("uid", "uid")
    await asyncio.to_thread(wait_http, procs.env["MEGAM_UID_URL"] + "/healthz")
    procs.start("gateway", "gateway")
    await asyncio.to_thread(wait_http, procs.env["MEGAM_URL"] + "/healthz")
    procs.start(
        "herk-cut", "herk", "--name", "cut", "--workers", "2",
        "--metrics-port", str(free_port()),
        MEGAM_AMQP_URL=proxy.url,
        PATH=f"{REPO / 'tests' / 'fakes'}:/usr/bin:/bin",
        MEGAM_HERK_PASSENV="MEGAM_FAKE_*",
        MEGAM_FAKE_ARGV_LOG=str(argv_log),
        MEGAM_FAKE_LINES=str(PROGRESS_LINES),
        MEGAM_FAKE_LINE_SECONDS="1",
        MEGAM_HERK_HEARTBEAT_SECONDS="1",
    )  # fmt: skip
    keys = argv_log.parent / "aws-keys"
    keys.write_text("aws_access_key_id = AKIAFAKEFAKEFAKE\naws_secret_access_key = s3cr3tValue\n")
    for command in (
        ("accounts", "create", "cut@megam.io"),
        ("clouds", "add", "aws", "--provider", "ec2", "--image", "ami-0abc", "--flavor",
         "t3.micro", "--region", "eu-west-1", "--ssh-key", "megam", "--ssh-user", "ubuntu",
         "--group", "megam", "--credentials-file", str(keys)),
    ):  # fmt: skip
        done = await asyncio.to_thread(procs.cli, *command)
        assert done.returncode == 0, done.stderr


def test_the_cut_outlasts_the_gateways_silence_limit() -> None:
    assert GatewayOptions().herk_silence_min_seconds < CUT_SECONDS


async def test_a_knife_create_across_a_75_s_partition_ends_succeeded_exactly_once(
    services: Processes, proxy: TcpProxy, tmp_path: Path
) -> None:
    procs, argv_log = services, tmp_path / "argv.jsonl"
    await started(procs, proxy, argv_log)
    me = saved_account(procs)
    async with ApiClient(procs.env["MEGAM_URL"], me["email"], me["api_key"]) as api:
        answer = await api.post(
            "/v1/nodes/content",
            {"node_name": "cut1.megam.io", "predefcloud": "aws", "run_list": ["role[rails]"]},
        )
        assert answer[0]["code"] == 201, answer
        [job_id] = JOB_ID.findall(answer[0]["more"])

        async def job() -> dict[str, Any]:
            return await api.get(f"/v1/jobs/{job_id}")

        async def job_when(test: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
            seen = await job()
            return seen if test(seen) else None

        async def node_status() -> str:
            return (await api.get("/v1/nodes/cut1.megam.io"))["status"]

        await until(lambda: job_when(lambda j: j["state"] == "running"), "running", 60)
        await until(lambda: asyncio.sleep(0, knife_runs(argv_log)), "the knife starting", 30)
        await proxy.outage()
        cut_at = time.monotonic()
        seen = await until(
            lambda: job_when(
                lambda j: (j["waiting_reason"] or {}).get("code") == "herk_node_unreachable"
            ),
            "the node shown unreachable",
            CUT_SECONDS,
        )
        assert seen["state"] == "running"
        assert seen["waiting_reason"]["text"].startswith("herk node cut unreachable for ")
        assert await node_status() == "LAUNCHING"
        seen = await until(
            lambda: job_when(lambda j: j["state"] == "interrupted"),
            "the presumption",
            CUT_SECONDS,
        )
        assert "herk node cut stopped sending heartbeats" in seen["reason"]
        assert await node_status() == "NOTRUNNING"
        await asyncio.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut_at)))
        proxy.heal()

        done = await until(
            lambda: job_when(lambda j: j["state"] == "succeeded"), "the node's own outcome", 120
        )
        states = [h["state"] for h in done["history"]]
        assert states[-2:] == ["interrupted", "succeeded"] and states.count("succeeded") == 1
        assert done["exit_code"] == 0
        assert await node_status() == "RUNNING"
        assert knife_runs(argv_log) == 1, "one server created"
        runs = [json.loads(line)["argv"] for line in argv_log.read_text().splitlines()]
        assert runs[0][1:4] == ["ec2", "server", "create"]
    assert procs.running[-1].poll() is None, "the cut herk node came back, still running"
