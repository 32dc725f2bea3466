"""The heartbeat sender, and the intake capacity the heartbeat's node computes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from herk.events import EventPublisher
from herk.heartbeat import Heartbeats
from herk.intake import capacity
from herk.outbox import EventOutbox
from megam import topology, wire
from megam.bus import Delivery
from megam.bus.embedded import EmbeddedBus


def publisher(bus: EmbeddedBus) -> EventPublisher:
    return EventPublisher(bus, "hb", EventOutbox(bus, Path("/nonexistent")))  # beats only


def beat() -> wire.Heartbeat:
    return wire.Heartbeat(
        herk="hb", workers=1, busy=0, inflight=[], version="t", started_at=1.0, at=wire.now()
    )


async def test_beats_go_out_on_schedule_and_once_more_on_demand() -> None:
    bus = EmbeddedBus()
    await bus.connect()
    await bus.declare(topology.EXCHANGES, [])
    seen: list[Delivery] = []

    async def receive(delivery: Delivery) -> None:
        seen.append(delivery)
        await delivery.ack()

    await bus.consume_temporary([(topology.EVENTS.name, "heartbeat.#")], receive)
    heartbeats = Heartbeats(bus, publisher(bus), 0.01, beat)
    heartbeats.start()
    async with asyncio.timeout(10):
        while len(seen) < 3:
            await asyncio.sleep(0.01)
    await heartbeats.stop()
    stopped_at = len(seen)
    await heartbeats.send()
    async with asyncio.timeout(10):
        while len(seen) == stopped_at:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # a schedule still running would have beaten again by now
    assert len(seen) == stopped_at + 1
    assert seen[-1].routing_key == topology.heartbeat_key("hb")
    await bus.close()


async def test_a_stopping_node_skips_its_beat_while_the_broker_is_away() -> None:
    bus = EmbeddedBus()  # never connected: the broker is away
    heartbeats = Heartbeats(bus, publisher(bus), 5.0, beat)
    heartbeats.stopping = True
    await asyncio.wait_for(heartbeats.send(), 1.0)  # returns at once, nothing raised


class TestCapacity:
    def test_short_jobs_let_a_node_hold_twice_its_free_workers(self) -> None:
        assert capacity(workers=4, accepted_running=1, long_running=0) == 6

    def test_a_long_job_gives_the_extra_room_up(self) -> None:
        assert capacity(workers=4, accepted_running=1, long_running=1) == 3

    def test_never_below_nothing(self) -> None:
        assert capacity(workers=2, accepted_running=3, long_running=0) == 0
