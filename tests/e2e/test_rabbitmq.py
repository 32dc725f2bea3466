"""Separate gateway, uid and herk processes talking only through the real RabbitMQ."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from megam import topology
from megam.bus.amqp import AmqpBus
from tests.e2e import flows
from tests.e2e.conftest import Processes, free_port, wait_http


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
                dead.append((delivery.body, str(delivery.headers.get(topology.REASON_HEADER))))
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
