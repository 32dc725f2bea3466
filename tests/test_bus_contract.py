"""The bus contract: the same behaviour from the embedded bus and from RabbitMQ."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from megam import topology
from megam.bus import Bus, BusError, Delivery, PublishError
from megam.bus.amqp import AmqpBus
from megam.bus.embedded import EmbeddedBus, topic_matches

WORK = topology.Queue(
    "contract.work",
    bindings=((topology.REQUESTS.name, "job.#"),),
    dead_letter_to="contract.work",
    delivery_limit=2,
)
DEAD = topology.Queue("contract.work.dead", bindings=((topology.DEAD.name, "contract.work"),))
EVENTS = topology.Queue("contract.events", bindings=((topology.EVENTS.name, "status.*"),))


@pytest.fixture(params=["embedded", "rabbitmq"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "embedded":
        instance: Bus = EmbeddedBus()
    else:
        instance = AmqpBus(request.getfixturevalue("amqp_url"), publish_timeout=2)
    await instance.connect()
    await instance.declare(topology.EXCHANGES, (WORK, DEAD, EVENTS))
    yield instance
    await instance.close()


class Collector:
    def __init__(self, *, ack: bool = True) -> None:
        self.items: list[Delivery] = []
        self.ack = ack
        self.arrived = asyncio.Condition()

    async def __call__(self, delivery: Delivery) -> None:
        if self.ack:
            await delivery.ack()
        async with self.arrived:
            self.items.append(delivery)
            self.arrived.notify_all()

    async def wait_for(self, count: int, timeout: float = 10) -> list[Delivery]:
        async with asyncio.timeout(timeout), self.arrived:
            await self.arrived.wait_for(lambda: len(self.items) >= count)
        return self.items


class TestPublishAndConsume:
    async def test_delivers_body_headers_and_ids(self, bus: Bus) -> None:
        collector = Collector()
        await bus.consume("contract.work", collector, prefetch=10)
        await bus.publish(
            "megam.requests",
            "job.noop",
            b'{"a":1}',
            message_id="m1",
            correlation_id="c1",
            headers={"x-test": "yes"},
        )
        [got] = await collector.wait_for(1)
        assert (got.body, got.message_id, got.correlation_id) == (b'{"a":1}', "m1", "c1")
        assert got.headers["x-test"] == "yes"
        assert got.routing_key == "job.noop"
        assert not got.redelivered

    async def test_unroutable_publish_is_an_error_not_a_silent_drop(self, bus: Bus) -> None:
        with pytest.raises(PublishError):
            await bus.publish("megam.events", "nobody.listens", b"{}")

    async def test_topic_bindings_route_by_pattern(self, bus: Bus) -> None:
        collector = Collector()
        await bus.consume("contract.events", collector, prefetch=10)
        await bus.publish("megam.events", "status.node1", b"1")
        with pytest.raises(PublishError):
            await bus.publish("megam.events", "status.node1.extra", b"2")
        [got] = await collector.wait_for(1)
        assert got.body == b"1"

    async def test_messages_arrive_in_publish_order(self, bus: Bus) -> None:
        collector = Collector()
        await bus.consume("contract.work", collector, prefetch=1)
        for i in range(20):
            await bus.publish("megam.requests", "job.x", str(i).encode())
        got = await collector.wait_for(20)
        assert [d.body for d in got] == [str(i).encode() for i in range(20)]


class TestAcknowledgement:
    async def test_prefetch_bounds_unacknowledged_deliveries(self, bus: Bus) -> None:
        collector = Collector(ack=False)
        await bus.consume("contract.work", collector, prefetch=3)
        for i in range(6):
            await bus.publish("megam.requests", "job.x", str(i).encode())
        await collector.wait_for(3)
        await asyncio.sleep(0.3)
        assert len(collector.items) == 3
        await collector.items[0].ack()
        await collector.wait_for(4)

    async def test_requeued_delivery_comes_back_marked_redelivered(self, bus: Bus) -> None:
        collector = Collector(ack=False)
        await bus.consume("contract.work", collector, prefetch=1)
        await bus.publish("megam.requests", "job.x", b"again")
        [first] = await collector.wait_for(1)
        await first.reject(requeue=True)
        second = (await collector.wait_for(2))[1]
        assert second.body == b"again" and second.redelivered
        await second.ack()

    async def test_cancelled_consumer_hands_unacked_work_back(self, bus: Bus) -> None:
        first = Collector(ack=False)
        subscription = await bus.consume("contract.work", first, prefetch=5)
        await bus.publish("megam.requests", "job.x", b"held")
        await first.wait_for(1)
        await subscription.cancel()
        second = Collector()
        await bus.consume("contract.work", second, prefetch=5)
        [got] = await second.wait_for(1)
        assert got.body == b"held" and got.redelivered


class TestDeadLetters:
    async def test_rejected_message_is_dead_lettered(self, bus: Bus) -> None:
        dead = Collector()
        await bus.consume("contract.work.dead", dead, prefetch=5)

        async def refuse(delivery: Delivery) -> None:
            await delivery.reject(requeue=False)

        await bus.consume("contract.work", refuse, prefetch=5)
        await bus.publish("megam.requests", "job.x", b"poison")
        [got] = await dead.wait_for(1)
        assert got.body == b"poison"

    async def test_handler_that_keeps_failing_hits_the_delivery_limit(self, bus: Bus) -> None:
        dead = Collector()
        await bus.consume("contract.work.dead", dead, prefetch=5)
        attempts = 0

        async def crash(delivery: Delivery) -> None:
            nonlocal attempts
            attempts += 1
            raise RuntimeError("handler bug")

        await bus.consume("contract.work", crash, prefetch=1)
        await bus.publish("megam.requests", "job.x", b"loops")
        [got] = await dead.wait_for(1, timeout=20)
        assert got.body == b"loops"
        assert attempts == WORK.delivery_limit + 1


class TestTemporaryQueues:
    async def test_private_queue_sees_events_until_cancelled(self, bus: Bus) -> None:
        collector = Collector()
        subscription = await bus.consume_temporary([("megam.events", "log.JOB1")], collector)
        await bus.publish("megam.events", "log.JOB1", b"line")
        [got] = await collector.wait_for(1)
        assert got.body == b"line"
        await subscription.cancel()
        with pytest.raises(PublishError):
            await bus.publish("megam.events", "log.JOB1", b"after")

    async def test_queue_depth_counts_ready_messages(self, bus: Bus) -> None:
        for _ in range(4):
            await bus.publish("megam.requests", "job.x", b"x")
        await asyncio.sleep(0.1)
        assert await bus.queue_depth("contract.work") == 4


async def test_publish_on_closed_bus_raises_bus_error() -> None:
    bus = EmbeddedBus()
    with pytest.raises(BusError):
        await bus.publish("megam.requests", "job.x", b"")


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("status.*", "status.a", True),
        ("status.*", "status.a.b", False),
        ("job.#", "job", True),
        ("job.#", "job.a.b", True),
        ("#", "anything.at.all", True),
        ("a.#.z", "a.z", True),
        ("a.#.z", "a.b.c.z", True),
        ("a.*.z", "a.z", False),
    ],
)
def test_topic_matching_follows_amqp_rules(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected
