"""Separate gateway, uid and herk processes talking only through the real RabbitMQ."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from pathlib import Path

import orjson
import pytest

from megam import topology, wire
from megam.bus.amqp import AmqpBus
from tests.e2e import flows
from tests.e2e.conftest import Processes, free_port, wait_http
from tests.e2e.flows import wait_for_cli


@pytest.fixture
def cluster(amqp_url: str, processes: Processes) -> Processes:
    """The vhost is set up first so it is torn down last, after the processes have stopped."""
    processes.env["MEGAM_AMQP_URL"] = amqp_url
    processes.start("uid", "uid")
    wait_http(processes.env["MEGAM_UID_URL"] + "/healthz")
    processes.start("gateway", "gateway")
    wait_http(processes.env["MEGAM_URL"] + "/healthz")
    for name in ("herk-a", "herk-b"):
        processes.start(
            name, "herk", "--name", name, "--workers", "2", "--metrics-port", str(free_port())
        )
    return processes


def test_launch_logs_status_and_delete_across_processes(cluster: Processes) -> None:
    measured = flows.launch_and_delete_a_local_node(cluster, "grace@megam.io")
    flows.other_tenant_sees_nothing(cluster)
    flows.report("rabbitmq", measured)
    herk_logs = cluster.log("herk-a") + cluster.log("herk-b")
    assert "local.create" in herk_logs and "local.delete" in herk_logs


def test_a_poison_message_is_dead_lettered_and_work_goes_on(
    cluster: Processes, amqp_url: str
) -> None:
    async def publish_garbage_then_read_dead_letters() -> list[tuple[bytes, str]]:
        bus = AmqpBus(amqp_url)
        await bus.connect()
        try:
            await bus.publish(topology.REQUESTS.name, "job.noop", b"{this is not json")
            await bus.publish(
                topology.REQUESTS.name, "job.noop", orjson.dumps({"v": 99, "job_id": "RIP1"})
            )
            dead: list[tuple[bytes, str]] = []

            async def collect(delivery) -> None:  # type: ignore[no-untyped-def]
                dead.append((delivery.body, str(delivery.headers.get(wire.REASON_HEADER))))
                await delivery.ack()

            await bus.consume(topology.HERK_REQUESTS_DEAD.name, collect, prefetch=10)
            async with asyncio.timeout(30):
                while len(dead) < 2:
                    await asyncio.sleep(0.1)
            return dead
        finally:
            await bus.close()

    dead = asyncio.run(publish_garbage_then_read_dead_letters())
    reasons = sorted(reason for _, reason in dead)
    assert any("invalid JSON" in r for r in reasons), reasons
    assert any("schema version 99" in r for r in reasons), reasons
    # the consumers are still alive: a real launch still works afterwards
    started = time.monotonic()
    flows.launch_and_delete_a_local_node(cluster, "hopper@megam.io")
    assert time.monotonic() - started < 600


FAKES = Path(__file__).parents[1] / "fakes"


@pytest.fixture
def ec2_cluster(amqp_url: str, processes: Processes, tmp_path: Path) -> Processes:
    """A cluster whose herk nodes find the fake ``knife`` (it stands in for Chef's knife with the
    knife-ec2 plugin, which cannot be installed here) first on PATH; it hangs mid-create."""
    processes.env["MEGAM_AMQP_URL"] = amqp_url
    processes.env["MEGAM_ADMIN_EMAILS"] = "ops@megam.io"
    processes.start("uid", "uid")
    wait_http(processes.env["MEGAM_UID_URL"] + "/healthz")
    processes.start("gateway", "gateway")
    wait_http(processes.env["MEGAM_URL"] + "/healthz")
    herk_env = {
        "PATH": f"{FAKES}:{os.environ['PATH']}",
        "MEGAM_HERK_PASSENV": "MEGAM_FAKE_*",
        "MEGAM_FAKE_HANG": "1",
        "MEGAM_FAKE_ARGV_LOG": str(tmp_path / "knife.jsonl"),
    }
    for name in ("herk-a", "herk-b"):
        processes.start(
            name,
            "herk",
            "--name",
            name,
            "--workers",
            "2",
            "--metrics-port",
            str(free_port()),
            **herk_env,
        )
    return processes


def test_an_operator_sees_the_cluster_cancels_a_running_launch_and_drains_a_node(
    ec2_cluster: Processes, tmp_path: Path
) -> None:
    procs = ec2_cluster
    assert procs.cli("accounts", "create", "ops@megam.io").returncode == 0
    keys = tmp_path / "aws-keys"
    keys.write_text("aws_access_key_id = AKIAFAKEFAKEFAKE\naws_secret_access_key = s3cr3tValue\n")
    added = procs.cli(
        "clouds",
        "add",
        "aws",
        "--provider",
        "ec2",
        "--image",
        "ami-0abc",
        "--flavor",
        "t3.micro",
        "--region",
        "eu-west-1",
        "--ssh-key",
        "megam",
        "--ssh-user",
        "ubuntu",
        "--group",
        "megam",
        "--credentials-file",
        str(keys),
    )
    assert added.returncode == 0, added.stderr

    status = wait_for_cli(
        procs, ("cluster", "status"), lambda out: "herk-a" in out and "herk-b" in out
    )
    assert "queue depth" in status

    launch = procs.cli(
        "nodes", "launch", "app.megam.io", "--cloud", "aws", "--runlist", "role[rails]"
    )
    assert launch.returncode == 0, launch.stderr
    shown = wait_for_cli(procs, ("nodes", "show", "app.megam.io"), lambda out: "running" in out)
    job_id = re.search(r"RIP\d+", shown).group(0)
    log = wait_for_cli(procs, ("logs", "app.megam.io"), lambda out: "knife ec2" in out)
    assert "s3cr3tValue" not in log and "AKIAFAKE" not in log, "no secret in the log"

    cancelled = procs.cli("jobs", "cancel", job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    job = wait_for_cli(procs, ("jobs", "show", job_id), lambda out: "cancelled" in out)
    assert re.search(r"state\s+cancelled", job), job
    assert procs.cli("jobs", "cancel", job_id).returncode != 0, "an ended job cannot be cancelled"

    runs = [json.loads(line) for line in (tmp_path / "knife.jsonl").read_text().splitlines()]
    assert len(runs) == 1, "a server create ran exactly once"
    assert runs[0]["argv"][:4] == ["knife", "ec2", "server", "create"] or runs[0]["argv"][1:4] == [
        "ec2",
        "server",
        "create",
    ]
    assert not any("s3cr3t" in arg for arg in runs[0]["argv"]), "no secret in argv"
    # what knife-ec2 2.2 takes today (the fake knife parses with its option table)
    argv = runs[0]["argv"]
    assert argv[argv.index("--connection-user") + 1] == "ubuntu"
    assert argv[argv.index("--groups") + 1] == "megam" and "-G" not in argv

    drained = procs.cli("cluster", "drain", "herk-a")
    assert drained.returncode == 0, drained.stderr
    wait_for_cli(
        procs,
        ("cluster", "status"),
        lambda out: re.search(r"herk-a\s+\S+\s+\d+\s+\d+\s+\d+\s+yes", out) is not None,
    )
