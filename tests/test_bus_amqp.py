"""What only the RabbitMQ bus has to get right: a nack is "not now", not "never".

RabbitMQ nacks a message that a queue could not take: a quorum queue between the death of its
leader and the election of the next one (tests/cluster), or, the same answer reproduced here on
one broker, a queue full with ``x-overflow: reject-publish``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiormq
import pytest

from megam import topology
from megam.bus import BusError, PublishError
from megam.bus.amqp import AmqpBus

FULL = "nacks.full"
KEY = "status.full"


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[aiormq.abc.AbstractChannel]:
    """A queue that holds one message and nacks any more, bound to megam.events."""
    connection = await aiormq.connect(amqp_url)
    channel = await connection.channel()
    await channel.exchange_declare(topology.EVENTS.name, exchange_type="topic", durable=True)
    await channel.queue_declare(
        FULL, durable=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
    )
    await channel.queue_bind(FULL, topology.EVENTS.name, routing_key=KEY)
    yield channel
    await connection.close()


async def until(condition: object, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def bodies(channel: aiormq.abc.AbstractChannel) -> list[bytes]:
    got = []
    while isinstance((message := await channel.basic_get(FULL, no_ack=True)).delivery,
                     aiormq.spec.Basic.GetOk):
        got.append(message.body)
    return got


class TestANackedPublish:
    async def test_goes_through_once_the_queue_can_take_it(
        self, amqp_url: str, broker: aiormq.abc.AbstractChannel
    ) -> None:
        bus = AmqpBus(amqp_url, publish_timeout=30)
        await bus.connect()
        try:
            await bus.publish(topology.EVENTS.name, KEY, b"first")  # the queue is full now
            second = asyncio.create_task(bus.publish(topology.EVENTS.name, KEY, b"second"))
            await until(lambda: bus.nacked >= 1 or second.done(), "the broker's nack")
            assert not second.done(), "a nack is not the end of the publish"

            assert await bodies(broker) == [b"first"]  # room again
            await second
            assert await bodies(broker) == [b"second"]
        finally:
            await bus.close()

    async def test_that_never_gets_through_is_a_bus_error_not_a_refusal(
        self, amqp_url: str, broker: aiormq.abc.AbstractChannel
    ) -> None:
        bus = AmqpBus(amqp_url, publish_timeout=1)
        await bus.connect()
        try:
            await bus.publish(topology.EVENTS.name, KEY, b"first")
            with pytest.raises(BusError) as caught:
                await bus.publish(topology.EVENTS.name, KEY, b"second")
            assert not isinstance(caught.value, PublishError), caught.value
            assert bus.nacked >= 1
        finally:
            await bus.close()

    async def test_that_nobody_could_route_stays_a_refusal(self, amqp_url: str) -> None:
        bus = AmqpBus(amqp_url, publish_timeout=30)
        await bus.connect()
        try:
            await bus.declare(topology.EXCHANGES, ())
            with pytest.raises(PublishError):
                await bus.publish(topology.EVENTS.name, "status.nobody", b"x")
            assert bus.nacked == 0
        finally:
            await bus.close()
