"""The event outbox: events wait for the broker without anyone waiting for them, go out in the
order they came, spill to disk past the memory limit, survive a stop, and are refused loudly (log
batches only) past the disk limit.

The broker's absence is the embedded bus switched to refusing publishes as AmqpBus does when
RabbitMQ is away (a BusError); tests/faults/test_broker_outage.py does it with real RabbitMQ.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from herk.outbox import EventOutbox, Outgoing
from megam import topology
from megam.bus import BusError, Delivery
from megam.bus.embedded import EmbeddedBus

KEY = "log.outbox-test"


class SometimesAway(EmbeddedBus):
    def __init__(self) -> None:
        super().__init__()
        self.away = False
        self.refused = 0

    async def publish(self, exchange: str, routing_key: str, body: bytes, **options: Any) -> None:
        if self.away:
            self.refused += 1
            raise BusError("RabbitMQ unavailable for 30s")
        await super().publish(exchange, routing_key, body, **options)


class Received(list[bytes]):
    async def __call__(self, delivery: Delivery) -> None:
        self.append(delivery.body)
        await delivery.ack()

    async def count(self, wanted: int) -> list[bytes]:
        async with asyncio.timeout(20):
            while len(self) < wanted:
                await asyncio.sleep(0.01)
        return list(self)


@pytest.fixture
async def bus() -> AsyncIterator[SometimesAway]:
    instance = SometimesAway()
    await instance.connect()
    await instance.declare(topology.EXCHANGES, [])
    yield instance
    await instance.close()


@pytest.fixture
async def received(bus: SometimesAway) -> Received:
    sink = Received()
    await bus.consume_temporary([(topology.EVENTS.name, "log.#")], sink, prefetch=1000)
    return sink


def message(number: int, *, size: int = 10, droppable: bool = True, job: str = "RIP1") -> Outgoing:
    body = f"{number:06d}".encode().ljust(size, b".")
    return Outgoing(topology.EVENTS.name, KEY, body, job_id=job, droppable=droppable)


def numbers(bodies: list[bytes]) -> list[int]:
    return [int(body[:6]) for body in bodies]


async def until_refused(bus: SometimesAway) -> None:
    async with asyncio.timeout(10):
        while bus.refused == 0:
            await asyncio.sleep(0.01)


class TestWhileTheBrokerIsAway:
    async def test_a_put_returns_at_once_and_everything_goes_out_in_order_when_it_is_back(
        self, bus: SometimesAway, received: Received, tmp_path: Path
    ) -> None:
        outbox = EventOutbox(bus, tmp_path / "outbox")
        await outbox.start()
        bus.away = True
        for number in range(50):
            assert outbox.put(message(number))
        status = asyncio.create_task(outbox.deliver(message(50, droppable=False)))
        await until_refused(bus)
        assert not status.done(), "a confirm cannot come while the broker is away"

        bus.away = False
        await asyncio.wait_for(status, 20)
        assert numbers(await received.count(51)) == list(range(51))
        await outbox.close(1)

    async def test_past_the_memory_limit_events_spill_to_disk_and_come_back_in_order(
        self, bus: SometimesAway, received: Received, tmp_path: Path
    ) -> None:
        outbox = EventOutbox(bus, tmp_path / "outbox", memory_limit=1000)
        await outbox.start()
        bus.away = True
        for number in range(40):
            outbox.put(message(number, size=100))
        assert list((tmp_path / "outbox").glob("*.spill")), "what memory could not hold"
        assert outbox.backlog <= 10

        bus.away = False
        assert numbers(await received.count(40)) == list(range(40))
        await outbox.close(5)
        assert list((tmp_path / "outbox").glob("*.spill")) == [], "delivered: nothing kept"


class TestTheDiskLimit:
    async def test_log_batches_are_refused_and_counted_but_a_status_never_is(
        self, bus: SometimesAway, received: Received, tmp_path: Path
    ) -> None:
        before = REGISTRY.get_sample_value("megam_herk_events_dropped_total", {"kind": "log"})
        outbox = EventOutbox(bus, tmp_path / "outbox", memory_limit=100, disk_limit=500)
        await outbox.start()
        bus.away = True
        kept = [outbox.put(message(number, size=100, job="RIP7")) for number in range(10)]
        status = asyncio.create_task(outbox.deliver(message(10, size=100, droppable=False)))
        await asyncio.sleep(0)

        assert kept[0] and not kept[-1]
        assert outbox.dropped("RIP7") == kept.count(False) > 0
        after = REGISTRY.get_sample_value("megam_herk_events_dropped_total", {"kind": "log"})
        assert after - (before or 0.0) == kept.count(False)
        bus.away = False
        await asyncio.wait_for(status, 20)
        got = numbers(await received.count(kept.count(True) + 1))
        assert got == [n for n, k in enumerate(kept) if k] + [10]
        await outbox.close(1)


class TestAStop:
    async def test_what_was_not_delivered_is_kept_and_sent_first_at_the_next_start(
        self, bus: SometimesAway, received: Received, tmp_path: Path
    ) -> None:
        directory = tmp_path / "outbox"
        first = EventOutbox(bus, directory, memory_limit=500)
        await first.start()
        bus.away = True
        for number in range(12):  # some in memory, the rest spilled after them
            first.put(message(number, size=100))
        status = asyncio.create_task(first.deliver(message(12, size=100, droppable=False)))
        await first.close(0.2)
        with pytest.raises(BusError, match="kept for its next start"):
            await status
        assert not first.put(message(99)), "a closed outbox takes nothing more"

        bus.away = False
        second = EventOutbox(bus, directory)
        await second.start()
        second.put(message(13))
        assert numbers(await received.count(14)) == list(range(14))
        await second.close(5)

    async def test_a_record_cut_short_by_a_crash_ends_its_segment(
        self, bus: SometimesAway, received: Received, tmp_path: Path
    ) -> None:
        directory = tmp_path / "outbox"
        first = EventOutbox(bus, directory, memory_limit=0)
        await first.start()
        bus.away = True
        for number in range(3):
            first.put(message(number))
        await first.close(0.1)
        [segment] = directory.glob("*.spill")
        segment.write_bytes(segment.read_bytes()[:-3])  # the last record torn

        bus.away = False
        second = EventOutbox(bus, directory)
        await second.start()
        assert numbers(await received.count(2)) == [0, 1]
        await second.close(5)
        assert numbers(received) == [0, 1]


class TestRefusals:
    async def test_a_message_the_broker_refuses_fails_its_waiter_and_holds_nothing_up(
        self, bus: SometimesAway, received: Received, tmp_path: Path
    ) -> None:
        outbox = EventOutbox(bus, tmp_path / "outbox")
        await outbox.start()
        nowhere = Outgoing("no.such.exchange", KEY, b"x")
        with pytest.raises(BusError, match="no exchange"):
            await outbox.deliver(nowhere)
        await outbox.deliver(message(1, droppable=False))
        assert numbers(await received.count(1)) == [1]
        await outbox.close(1)

    async def test_a_disk_that_refuses_the_spill_keeps_events_in_memory_instead(
        self, bus: SometimesAway, received: Received, tmp_path: Path
    ) -> None:
        directory = tmp_path / "outbox"
        outbox = EventOutbox(bus, directory, memory_limit=100)
        await outbox.start()
        directory.rmdir()
        directory.write_text("not a directory")  # every spill now fails
        bus.away = True
        assert all(outbox.put(message(number, size=100)) for number in range(5))

        bus.away = False
        assert numbers(await received.count(5)) == list(range(5))
        await outbox.close(1)
