"""``Subscription.stop_receiving`` (added to the bus for herk's drain): no new deliveries, while
the ones already received can still be acknowledged. Same behaviour on both buses."""

from __future__ import annotations

import asyncio

from megam import topology
from megam.bus import Bus, Delivery


class TestStopReceiving:
    async def test_keeps_received_deliveries_ackable_and_leaves_new_ones_queued(
        self, bus: Bus
    ) -> None:
        held: list[Delivery] = []
        arrived = asyncio.Event()

        async def hold(delivery: Delivery) -> None:
            held.append(delivery)
            if len(held) == 2:
                arrived.set()

        subscription = await bus.consume(topology.HERK_REQUESTS.name, hold, prefetch=2)
        for number in range(2):
            await bus.publish(topology.REQUESTS.name, "job.noop", b"held %d" % number)
        await asyncio.wait_for(arrived.wait(), 10)

        await subscription.stop_receiving()
        await bus.publish(topology.REQUESTS.name, "job.noop", b"left in the queue")
        for delivery in held:
            await delivery.ack()

        assert await _depth_settles(bus, 1)
        assert [d.body for d in held] == [b"held 0", b"held 1"]
        await subscription.cancel()
        assert await bus.queue_depth(topology.HERK_REQUESTS.name) == 1
        assert len(held) == 2, "nothing was delivered after stop_receiving"


async def _depth_settles(bus: Bus, expected: int) -> bool:
    """RabbitMQ reports queue depth a moment after a publish is confirmed."""
    for _ in range(100):
        if await bus.queue_depth(topology.HERK_REQUESTS.name) == expected:
            return True
        await asyncio.sleep(0.05)
    return False
