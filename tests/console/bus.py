"""Publishing to the platform's RabbitMQ from a browser test (Playwright runs its loop here)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterable

from megam import topology, wire
from megam.bus.amqp import AmqpBus


def publish(amqp_url: str, messages: Iterable[tuple[str, str, bytes]]) -> None:
    """Publish (exchange, routing key, body) in order, with publisher confirms."""

    async def send() -> None:
        bus = AmqpBus(amqp_url)
        await bus.connect()
        try:
            for exchange, key, body in messages:
                await bus.publish(exchange, key, body)
        finally:
            await bus.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, send()).result(timeout=60)


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
