"""A service given the cluster's comma list of URLs fails over when its broker node dies."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlparse

import pytest

from megam import topology
from megam.bus.amqp import AmqpBus
from megam.bus.base import BusError, Delivery
from tests.cluster.conftest import Cluster

pytestmark = pytest.mark.timeout(240)

FAILOVER_BUDGET = 10.0
"""The issue's promise: on another node within 10 s."""


async def connected_bus(urls: str) -> AmqpBus:
    bus = AmqpBus(urls, publish_timeout=30)
    await bus.connect()
    await bus.declare(topology.EXCHANGES, topology.ALL_QUEUES)
    return bus


async def publish_numbered(bus: AmqpBus, n: int) -> None:
    await bus.publish(topology.REQUESTS.name, "job.noop", json.dumps({"n": str(n)}).encode())


def node_of(bus: AmqpBus, cluster: Cluster) -> int:
    port = urlparse(bus.current_url).port
    assert port is not None
    return cluster.node_of_port(port)


async def test_a_dead_first_url_is_skipped_at_connect(rabbit_cluster: Cluster, cluster_urls: str):
    rabbit_cluster.kill(1)
    bus = await connected_bus(cluster_urls)
    try:
        assert node_of(bus, rabbit_cluster) == 2
        await bus.publish(topology.REQUESTS.name, "job.noop", b"{}", message_id="m1")
    finally:
        await bus.close()


async def test_no_reachable_url_is_one_clear_error_naming_each_without_passwords():
    bus = AmqpBus("amqp://guest:secret@127.0.0.1:1/,amqp://guest:secret@127.0.0.1:2/")
    with pytest.raises(BusError) as refused:
        await bus.connect()
    assert "127.0.0.1:1" in str(refused.value) and "127.0.0.1:2" in str(refused.value)
    assert "secret" not in str(refused.value)


async def test_publishing_goes_on_through_another_node_after_a_kill_9(
    rabbit_cluster: Cluster, cluster_urls: str
):
    bus = await connected_bus(cluster_urls)
    consumer_bus = await connected_bus(cluster_urls)
    received: set[str] = set()

    async def take(delivery: Delivery) -> None:
        received.add(json.loads(delivery.body)["n"])
        await delivery.ack()

    try:
        await consumer_bus.consume(topology.HERK_REQUESTS.name, take, prefetch=10)
        confirmed: set[str] = set()
        for n in range(20):
            await publish_numbered(bus, n)
            confirmed.add(str(n))
        killed = node_of(bus, rabbit_cluster)
        rabbit_cluster.kill(killed)

        loop = asyncio.get_running_loop()
        started = loop.time()
        await bus.publish(topology.REQUESTS.name, "job.noop", b'{"n": "after"}')
        took = loop.time() - started
        confirmed.add("after")
        assert node_of(bus, rabbit_cluster) != killed
        assert took < FAILOVER_BUDGET, f"the first publish after the kill took {took:.1f}s"

        for n in range(20, 40):  # and it keeps going
            await publish_numbered(bus, n)
            confirmed.add(str(n))
        async with asyncio.timeout(60):
            while not confirmed <= received:
                await asyncio.sleep(0.1)
    finally:
        await bus.close()
        await consumer_bus.close()


async def test_quorum_queues_and_streams_are_replicated_on_every_node(
    rabbit_cluster: Cluster, cluster_urls: str
):
    bus = await connected_bus(cluster_urls)
    await bus.close()
    vhost = urlparse(cluster_urls.split(",")[0]).path.lstrip("/")
    listed = json.loads(
        rabbit_cluster.ctl(1, "list_queues", "-p", vhost, "name", "type", "members",
                           "--formatter", "json")
    )
    members = {queue["name"]: (queue["type"], len(queue["members"])) for queue in listed
               if queue["type"] in ("quorum", "stream")}
    assert members[topology.HERK_REQUESTS.name] == ("quorum", 3)
    assert members[topology.GATEWAY_EVENTS.name] == ("quorum", 3)
    assert members[topology.HERK_CANCELS.name] == ("stream", 3)


async def test_a_uid_lease_is_taken_on_the_first_node_of_the_list_that_answers(
    rabbit_cluster: Cluster, cluster_urls: str
):
    from uid.amqp_lease import AmqpLeaser

    rabbit_cluster.kill(1)
    lease = await AmqpLeaser(cluster_urls).acquire(datacenter_id=0, worker_id=None)
    try:
        assert lease.worker_id == 0 and "rabbitmq queue" in lease.where
    finally:
        await lease.release(0)
