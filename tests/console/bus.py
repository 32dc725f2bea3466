"""The platform's RabbitMQ from a browser test: publish, park a dead letter, take from a queue.

Playwright's sync API runs an event loop in the test's thread, so each call runs in its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from megam import topology, wire
from megam.bus import Delivery
from megam.bus.amqp import AmqpBus
from tests.gateway.conftest import Collector

T = TypeVar("T")


def _on_the_broker(amqp_url: str, work: Callable[[AmqpBus], Awaitable[T]]) -> T:
    """``work`` on a connection of its own, in a thread with its own event loop."""

    async def run() -> T:
        bus = AmqpBus(amqp_url)
        await bus.connect()
        try:
            return await work(bus)
        finally:
            await bus.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=60)


def publish(amqp_url: str, messages: Iterable[tuple[str, str, bytes]]) -> None:
    """Publish (exchange, routing key, body) in order, with publisher confirms."""

    async def send(bus: AmqpBus) -> None:
        for exchange, key, body in messages:
            await bus.publish(exchange, key, body)

    _on_the_broker(amqp_url, send)


def dead_letter(amqp_url: str, body: bytes, reason: str) -> None:
    """Park ``body`` in ``herk.requests.dead`` with ``reason``, as herk does when it gives up."""

    async def send(bus: AmqpBus) -> None:
        headers = {wire.REASON_HEADER: reason}
        await bus.publish(topology.DEAD.name, topology.HERK_REQUESTS.name, body, headers=headers)

    _on_the_broker(amqp_url, send)


def take(amqp_url: str, queue: str, count: int) -> list[Delivery]:
    """The first ``count`` messages of ``queue``, acknowledged: they leave it."""

    async def receive(bus: AmqpBus) -> list[Delivery]:
        taken = Collector()
        subscription = await bus.consume(queue, taken, prefetch=count)
        deliveries = await taken.wait_for(count, timeout=30)
        await subscription.cancel()
        return deliveries

    return _on_the_broker(amqp_url, receive)


def metric_events(node: str, account: str, samples: list[dict[str, float]], start: float):
    """One MetricEvent per entry of ``samples``, ten seconds apart from ``start``."""
    return [
        (
            topology.EVENTS.name,
            topology.metric_key(node),
            wire.encode(wire.MetricEvent(node=node, account=account, samples=s, at=start + 10 * i)),
        )
        for i, s in enumerate(samples)
    ]
