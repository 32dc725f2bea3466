"""Writes survive a broker outage: separate uid and gateway processes reach RabbitMQ only through
a TCP proxy, which cuts them off for 40 s (the shared broker itself is never stopped).

The uid service keeps issuing ids up to the horizon it persisted before the cut (docs/uid.md,
"Broker outages"), so every launch made during the outage is accepted (201) and kept in the
gateway's outbox; once the broker is back each one is published, exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest

from megam import topology, wire
from megam.bus import Delivery
from megam.bus.amqp import AmqpBus
from megam_cli.client import ApiClient
from tests.e2e.conftest import Processes, free_port, saved_account, wait_http
from tests.faults.outage_proxy import OutageProxy

OUTAGE_SECONDS = 40
LAUNCHES = 20
JOB_ID = re.compile(r"job (RIP\d+) ")


@pytest.fixture
async def proxy(amqp_url: str) -> AsyncIterator[OutageProxy]:
    relay = await OutageProxy.start(amqp_url)
    yield relay
    relay.restore()
    await relay.close()


@pytest.fixture
def services(proxy: OutageProxy, tmp_path: Path) -> Iterator[Processes]:
    """uid and gateway processes, both behind the proxy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEGAM_")}
    port, uid_port = free_port(), free_port()
    env.update(
        HOME=str(tmp_path / "home"),
        MEGAM_DATA_DIR=str(tmp_path / "data"),
        MEGAM_CREDENTIALS=str(tmp_path / "home" / "credentials.json"),
        MEGAM_PORT=str(port),
        MEGAM_URL=f"http://127.0.0.1:{port}",
        MEGAM_UID_PORT=str(uid_port),
        MEGAM_UID_URL=f"http://127.0.0.1:{uid_port}",
        MEGAM_AMQP_URL=proxy.url,
        MEGAM_LOG_LEVEL="info",
    )
    (tmp_path / "logs").mkdir()
    procs = Processes(env, tmp_path / "logs")
    try:
        yield procs
    finally:
        with contextlib.suppress(Exception):
            procs.stop_all()


class Published:
    """The job requests that reach ``herk.requests``, read straight from the broker."""

    def __init__(self) -> None:
        self.job_ids: list[str] = []

    async def receive(self, delivery: Delivery) -> None:
        self.job_ids.append(wire.decode(delivery.body, wire.JobRequest).job_id)
        await delivery.ack()


@pytest.fixture
async def published(amqp_url: str) -> AsyncIterator[Published]:
    bus = AmqpBus(amqp_url)
    await bus.connect()
    await bus.declare(topology.EXCHANGES, topology.ALL_QUEUES)
    seen = Published()
    await bus.consume(topology.HERK_REQUESTS.name, seen.receive, prefetch=100)
    yield seen
    await bus.close()


def uid_health(procs: Processes) -> dict[str, object]:
    try:
        with urllib.request.urlopen(procs.env["MEGAM_UID_URL"] + "/healthz", timeout=5) as resp:
            return orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return orjson.loads(exc.read())


async def launch(api: ApiClient, number: int) -> list[str]:
    answer = await api.post(
        "/v1/nodes/content", {"node_name": f"out{number}.megam.local", "predefcloud": "home"}
    )
    assert answer[0]["code"] == 201, answer
    return JOB_ID.findall(answer[0]["more"])


async def test_launches_during_a_40_second_outage_are_all_accepted_and_published_after(
    services: Processes, proxy: OutageProxy, published: Published
) -> None:
    procs = services
    # The proxy runs on this loop: everything that waits for the services runs in a thread.
    procs.start("uid", "uid")
    await asyncio.to_thread(wait_http, procs.env["MEGAM_UID_URL"] + "/healthz")
    procs.start("gateway", "gateway")
    await asyncio.to_thread(wait_http, procs.env["MEGAM_URL"] + "/healthz")
    for command in (
        ("accounts", "create", "out@megam.io"),
        ("clouds", "add", "home", "--provider", "local"),
    ):
        done = await asyncio.to_thread(procs.cli, *command)
        assert done.returncode == 0, done.stderr
    stored = saved_account(procs)

    await proxy.outage()
    ends_at = time.monotonic() + OUTAGE_SECONDS
    job_ids: list[str] = []
    async with ApiClient(procs.env["MEGAM_URL"], stored["email"], stored["api_key"]) as api:
        for number in range(LAUNCHES):  # spread over the outage
            job_ids += await launch(api, number)
            await asyncio.sleep((ends_at - time.monotonic()) / (LAUNCHES - number) / 2)
        health = await asyncio.to_thread(uid_health, procs)
        assert health["serving"] is True and "lease_lost" in health, health
        await asyncio.sleep(max(0.0, ends_at - time.monotonic()))
        assert published.job_ids == [], "the proxy really kept the services from the broker"
        proxy.restore()

        deadline = time.monotonic() + 120
        while sorted(set(published.job_ids)) != sorted(job_ids) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
    assert len(job_ids) == LAUNCHES
    assert sorted(published.job_ids) == sorted(job_ids), "each launch is published exactly once"
