"""The bus contract: the same behaviour from the embedded bus and from RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiormq
import pytest

from megam import topology
from megam.bus import Bus, BusError, Delivery, Handler, PublishError, Subscription
from megam.bus.amqp import AmqpBus
from megam.bus.embedded import EmbeddedBus, topic_matches
from tests.faults.tcp_proxy import TcpProxy

WORK = topology.Queue(
    "contract.work",
    bindings=((topology.REQUESTS.name, "job.#"),),
    dead_letter_to="contract.work",
    delivery_limit=2,
)
DEAD = topology.Queue("contract.work.dead", bindings=((topology.DEAD.name, "contract.work"),))
EVENTS = topology.Queue("contract.events", bindings=((topology.EVENTS.name, "status.*"),))
STREAM = topology.Queue(
    "contract.stream",
    bindings=((topology.CONTROL.name, "control.all"),),
    quorum=False,
    stream_max_age="1h",
)


@pytest.fixture(params=["embedded", "durable-embedded", "rabbitmq"])
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bus]:
    if request.param == "embedded":
        instance: Bus = EmbeddedBus()
    elif request.param == "durable-embedded":
        instance = EmbeddedBus(tmp_path / "bus")
    else:
        instance = AmqpBus(request.getfixturevalue("amqp_url"), publish_timeout=2)
    await instance.connect()
    await instance.declare(topology.EXCHANGES, (WORK, DEAD, EVENTS, STREAM))
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


class TestConfirmedAck:
    async def test_is_not_undone_when_the_consumer_loses_its_connection_right_after(
        self, bus: Bus, request: pytest.FixtureRequest
    ) -> None:
        collector = Collector(ack=False)
        subscription = await bus.consume("contract.work", collector, prefetch=20)
        for i in range(20):
            await bus.publish("megam.requests", "job.x", b"%d" % i)
        received = list(await collector.wait_for(20))
        for delivery in received[:15]:
            await delivery.ack(confirmed=True)

        await sever(bus, subscription, collector, request)  # no goodbye, at once
        await bus.publish("megam.requests", "job.x", b"after")  # returned ones come first
        await collector.wait_for(26)
        again = [d.body for d in collector.items[20:] if d.body != b"after"]
        assert sorted(again) == sorted(d.body for d in received[15:]), "only unacked came back"
        assert all(d.redelivered for d in collector.items[20:25])
        with pytest.raises(BusError):  # its channel is gone: the ack cannot be proven
            await received[15].ack(confirmed=True)


class TestHandlersOutliveTheirConnection:
    async def test_a_handler_runs_to_its_end_and_its_delivery_comes_back(
        self, bus: Bus, request: pytest.FixtureRequest
    ) -> None:
        gate = asyncio.Event()
        settled: list[str] = []

        async def slow(delivery: Delivery) -> None:
            await gate.wait()  # a long job: its consumer's connection dies meanwhile
            try:
                await delivery.ack()
                settled.append("acked")
            except BusError:
                settled.append("refused")

        collector = Collector(ack=False)

        async def handler(delivery: Delivery) -> None:
            await collector(delivery)
            await slow(delivery)

        subscription = await bus.consume("contract.work", handler, prefetch=5)
        await bus.publish("megam.requests", "job.x", b"long")
        await collector.wait_for(1)
        await sever(bus, subscription, handler, request)
        gate.set()
        again = (await collector.wait_for(2))[1]
        assert again.body == b"long" and again.redelivered
        async with asyncio.timeout(10):
            while len(settled) < 2:
                await asyncio.sleep(0.01)
        assert sorted(settled) == ["acked", "refused"]


async def sever(
    bus: Bus, subscription: Subscription, handler: Handler, request: pytest.FixtureRequest
) -> None:
    """Cut the consumer off abruptly; it is back (reconnected) when this returns."""
    if isinstance(bus, EmbeddedBus):
        await subscription.cancel()
        await bus.consume("contract.work", handler, prefetch=20)
        return
    vhost = request.getfixturevalue("amqp_url").rsplit("/", 1)[1]
    listed = await asyncio.to_thread(
        subprocess.run,
        ["rabbitmqctl", "-q", "list_connections", "--no-table-headers", "-p", vhost, "pid"],
        capture_output=True,
        text=True,
        check=True,
    )
    for pid in listed.stdout.split():
        await asyncio.to_thread(
            subprocess.run, ["rabbitmqctl", "-q", "close_connection", pid, "severed"], check=True
        )


class TestConfirmedAckOnRabbitMQ:
    async def test_an_ack_lost_on_the_way_is_not_reported_confirmed(self, amqp_url: str) -> None:
        proxy = await TcpProxy.start(amqp_url)
        direct = AmqpBus(amqp_url, publish_timeout=2)
        proxied = AmqpBus(proxy.url, publish_timeout=2)
        try:
            await direct.connect()
            await direct.declare(topology.EXCHANGES, (WORK, DEAD))
            await proxied.connect()
            held = Collector(ack=False)
            await proxied.consume("contract.work", held, prefetch=5)
            await direct.publish("megam.requests", "job.x", b"plain")
            await direct.publish("megam.requests", "job.x", b"confirmed")
            plain, confirmed = await held.wait_for(2)

            proxy.blackhole()  # from here on nothing the consumer sends reaches the broker
            await plain.ack()  # returns all the same: AMQP does not answer an ack
            with pytest.raises(BusError):
                await confirmed.ack(confirmed=True)
            await proxy.close()  # the broker sees the consumer go: neither ack had arrived

            back = Collector()
            await direct.consume("contract.work", back, prefetch=5)
            assert sorted(d.body for d in await back.wait_for(2)) == [b"confirmed", b"plain"]
        finally:
            await proxied.close()
            await direct.close()
            await proxy.close()


class TestStreams:
    async def test_every_follower_reads_from_its_offset_then_follows(self, bus: Bus) -> None:
        for i in range(3):
            await bus.publish("megam.control", "control.all", b"old %d" % i)
        first, second, later = Collector(), Collector(), Collector()
        await bus.follow_stream("contract.stream", first, offset="first", prefetch=2)
        await bus.follow_stream("contract.stream", second, offset="first", prefetch=2)
        await bus.follow_stream("contract.stream", later, offset="next")
        old = await first.wait_for(3)
        assert [d.body for d in old] == [b"old 0", b"old 1", b"old 2"]
        offsets = [d.headers["x-stream-offset"] for d in old]
        assert offsets == sorted(offsets) and len(set(offsets)) == 3

        await bus.publish("megam.control", "control.all", b"new")
        assert [d.body for d in await first.wait_for(4)][3] == b"new"
        assert [d.body for d in await second.wait_for(4)] == [d.body for d in first.items]
        assert [d.body for d in await later.wait_for(1)] == [b"new"]

        from_offset = Collector()
        await bus.follow_stream("contract.stream", from_offset, offset=offsets[1])
        assert [d.body for d in await from_offset.wait_for(3)] == [b"old 1", b"old 2", b"new"]

    async def test_reading_a_stream_takes_nothing_away(self, bus: Bus) -> None:
        await bus.publish("megam.control", "control.all", b"kept")
        reader = Collector()
        subscription = await bus.follow_stream("contract.stream", reader)
        await reader.wait_for(1)
        await subscription.cancel()
        again = Collector()
        await bus.follow_stream("contract.stream", again)
        assert [d.body for d in await again.wait_for(1)] == [b"kept"]


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


KEEP = 600.0
"""How long the contract tests keep a claim: longer than any test."""


@contextlib.asynccontextmanager
async def another_connection(bus: Bus, request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    """A second connection to the same broker (the embedded broker is its one bus)."""
    if isinstance(bus, EmbeddedBus):
        yield bus
        return
    other = AmqpBus(request.getfixturevalue("amqp_url"), publish_timeout=5)
    await other.connect()
    try:
        yield other
    finally:
        await other.close()


CLAIMANTS = ("one", "two", "three")
"""One and three share a connection, two has its own."""


class TestClaimOnce:
    async def test_the_first_claim_wins_and_later_claimants_learn_its_holder(
        self, bus: Bus
    ) -> None:
        assert await bus.claim_once("contract.claim.a", "first", KEEP) is None
        assert await bus.claim_once("contract.claim.a", "second", KEEP) == "first"
        assert await bus.claim_once("contract.claim.b", "second", KEEP) is None, "keys apart"

    async def test_a_holder_asking_again_still_holds_its_claim(self, bus: Bus) -> None:
        """So a claim whose answer was lost on the way can be asked for again."""
        assert await bus.claim_once("contract.claim.a", "first", KEEP) is None
        assert await bus.claim_once("contract.claim.a", "first", KEEP) is None
        assert await bus.claim_once("contract.claim.a", "second", KEEP) == "first"

    async def test_of_claimants_racing_on_two_connections_exactly_one_wins(
        self, bus: Bus, request: pytest.FixtureRequest
    ) -> None:
        async with another_connection(bus, request) as other:
            keys = [f"contract.race.{n}" for n in range(25)]
            answers = await asyncio.gather(
                *(
                    claimant.claim_once(key, name, KEEP)
                    for key in keys
                    for claimant, name in zip((bus, other, bus), CLAIMANTS, strict=True)
                )
            )
        for number, key in enumerate(keys):
            got = dict(zip(CLAIMANTS, answers[3 * number : 3 * number + 3], strict=True))
            winners = [name for name, answer in got.items() if answer is None]
            assert len(winners) == 1, (key, got)
            assert set(got.values()) == {None, winners[0]}, (key, got)

    async def test_a_claim_outlives_the_connection_that_made_it(
        self, bus: Bus, request: pytest.FixtureRequest
    ) -> None:
        async with another_connection(bus, request) as other:
            assert await other.claim_once("contract.claim.a", "gone", KEEP) is None
        if isinstance(bus, EmbeddedBus):
            await bus.close()
            await bus.connect()
        assert await bus.claim_once("contract.claim.a", "later", KEEP) == "gone"

    async def test_a_claim_nobody_asks_about_for_its_keep_time_is_forgotten(self, bus: Bus) -> None:
        assert await bus.claim_once("contract.claim.a", "early", 0.3) is None
        async with asyncio.timeout(15):
            while (answer := await bus.claim_once("contract.claim.a", "late", 0.3)) is not None:
                assert answer == "early"
                await asyncio.sleep(1)  # asking keeps a claim: ask less often than it is kept


class TestClaimOnceOnRabbitMQ:
    async def test_a_claimant_that_dies_holding_the_lock_holds_nobody_up(
        self, amqp_url: str
    ) -> None:
        bus = AmqpBus(amqp_url, publish_timeout=10)
        dying = await aiormq.connect(amqp_url)
        try:
            await bus.connect()
            channel = await dying.channel()
            await channel.queue_declare(
                topology.claim_lock_queue("contract.claim.a"), exclusive=True
            )
            claiming = asyncio.create_task(bus.claim_once("contract.claim.a", "next", KEEP))
            await asyncio.sleep(0.3)
            assert not claiming.done(), "claimed while another connection held the lock"
            await dying.close()
            assert await claiming is None
        finally:
            await dying.close()
            await bus.close()

    async def test_a_claim_left_half_made_goes_to_the_next_claimant(self, amqp_url: str) -> None:
        """A claimant that died between creating the claim's queue and writing its name into it
        never learnt that it held the claim, so it never acted on it."""
        bus = AmqpBus(amqp_url, publish_timeout=10)
        await bus.connect()
        try:
            await bus.declare((), (topology.Queue("contract.claim.a", quorum=False),))
            assert await bus.claim_once("contract.claim.a", "next", KEEP) is None
            assert await bus.claim_once("contract.claim.a", "after", KEEP) == "next"
        finally:
            await bus.close()


@contextlib.asynccontextmanager
async def opened(directory: Path) -> AsyncIterator[EmbeddedBus]:
    """The durable embedded bus on ``directory``, with the contract's topology declared."""
    bus = EmbeddedBus(directory)
    await bus.connect()
    try:
        await bus.declare(topology.EXCHANGES, (WORK, DEAD, EVENTS, STREAM))
        yield bus
    finally:
        await bus.close()


async def take(bus: Bus, queue: str, count: int, *, ack: bool = False) -> list[Delivery]:
    collector = Collector(ack=ack)
    subscription = await bus.consume(queue, collector, prefetch=20)
    try:
        return list(await collector.wait_for(count))
    finally:
        await asyncio.sleep(0.1)  # anything beyond ``count`` would show up now
        await subscription.stop_receiving()


class TestAcrossARestart:
    """The durable embedded bus closed and opened again on the same directory, as ``megam up``
    restarted on the same data dir (a SIGKILL is in ``TestAcrossASigkill``)."""

    async def test_unacked_and_queued_messages_are_back_and_acked_ones_are_not(
        self, tmp_path: Path
    ) -> None:
        async with opened(tmp_path) as bus:
            for name in (b"confirmed", b"plain", b"held", b"queued 1", b"queued 2"):
                await bus.publish("megam.requests", "job.x", name)
            collector = Collector(ack=False)
            subscription = await bus.consume("contract.work", collector, prefetch=3)
            confirmed, plain, _ = await collector.wait_for(3)
            await subscription.stop_receiving()  # so that the acks make no room for the rest
            await confirmed.ack(confirmed=True)
            await plain.ack()
        async with opened(tmp_path) as bus:
            assert await bus.queue_depth("contract.work") == 3
            back = await take(bus, "contract.work", 3, ack=True)
        assert [(d.body, d.redelivered) for d in back] == [
            (b"held", True),
            (b"queued 1", False),
            (b"queued 2", False),
        ]
        async with opened(tmp_path) as bus:
            assert await bus.queue_depth("contract.work") == 0, "acked before the stop: gone"

    async def test_dead_letters_are_kept(self, tmp_path: Path) -> None:
        async with opened(tmp_path) as bus:
            await bus.publish("megam.requests", "job.x", b"poison", headers={"x-why": "test"})
            [got] = await take(bus, "contract.work", 1)
            await got.reject(requeue=False)
        async with opened(tmp_path) as bus:
            [dead] = await take(bus, "contract.work.dead", 1)
        assert dead.body == b"poison" and dead.headers["x-why"] == "test"
        assert dead.headers["x-first-death-reason"] == "rejected"

    async def test_delivery_counts_are_kept_so_the_delivery_limit_still_holds(
        self, tmp_path: Path
    ) -> None:
        """A message that takes its consumer down with it, restart after restart."""
        async with opened(tmp_path) as bus:
            await bus.publish("megam.requests", "job.x", b"kills its consumer")
        assert WORK.delivery_limit is not None
        for _ in range(WORK.delivery_limit + 1):
            async with opened(tmp_path) as bus:
                [got] = await take(bus, "contract.work", 1)
                assert got.body == b"kills its consumer"
        async with opened(tmp_path) as bus:
            [dead] = await take(bus, "contract.work.dead", 1)
            assert dead.headers["x-first-death-reason"] == "delivery_limit"
            assert await bus.queue_depth("contract.work") == 0

    async def test_a_stream_keeps_its_messages_and_offsets(self, tmp_path: Path) -> None:
        async with opened(tmp_path) as bus:
            for i in range(3):
                await bus.publish("megam.control", "control.all", b"before %d" % i)
        async with opened(tmp_path) as bus:
            await bus.publish("megam.control", "control.all", b"after")
            reader = Collector()
            await bus.follow_stream("contract.stream", reader, offset="first")
            got = await reader.wait_for(4)
        assert [d.body for d in got] == [b"before 0", b"before 1", b"before 2", b"after"]
        offsets = [d.headers["x-stream-offset"] for d in got]
        assert offsets == sorted(set(offsets)), "offsets go on counting after the restart"

    async def test_a_stream_forgets_what_is_older_than_its_max_age(self, tmp_path: Path) -> None:
        short = topology.Queue(
            "contract.short", bindings=((topology.CONTROL.name, "short"),), stream_max_age="1s"
        )
        async with opened(tmp_path) as bus:
            await bus.declare((), (short,))
            await bus.publish("megam.control", "short", b"old")
        await asyncio.sleep(1.5)
        async with opened(tmp_path) as bus:
            await bus.publish("megam.control", "short", b"new")
            reader = Collector()
            await bus.follow_stream("contract.short", reader, offset="first")
            await reader.wait_for(1)
            await asyncio.sleep(0.2)
        assert [d.body for d in reader.items] == [b"new"]

    async def test_a_claim_is_kept(self, tmp_path: Path) -> None:
        async with opened(tmp_path) as bus:
            assert await bus.claim_once("contract.claim.a", "before", KEEP) is None
        async with opened(tmp_path) as bus:
            assert await bus.claim_once("contract.claim.a", "after", KEEP) == "before"
            assert await bus.claim_once("contract.claim.a", "before", KEEP) is None

    async def test_declared_queues_route_before_anyone_declares_them_again(
        self, tmp_path: Path
    ) -> None:
        async with opened(tmp_path):
            pass
        bus = EmbeddedBus(tmp_path)
        await bus.connect()
        try:
            await bus.publish("megam.requests", "job.x", b"early")
            assert await bus.queue_depth("contract.work") == 1
        finally:
            await bus.close()

    async def test_a_temporary_queue_is_not_kept(self, tmp_path: Path) -> None:
        async with opened(tmp_path) as bus:
            await bus.consume_temporary([("megam.events", "log.JOB1")], Collector())
            await bus.publish("megam.events", "log.JOB1", b"line")
        async with opened(tmp_path) as bus:
            with pytest.raises(PublishError):
                await bus.publish("megam.events", "log.JOB1", b"line")

    async def test_a_second_bus_on_the_same_directory_is_refused(self, tmp_path: Path) -> None:
        async with opened(tmp_path):
            second = EmbeddedBus(tmp_path)
            with pytest.raises(BusError, match="in use by another process"):
                await second.connect()
        async with opened(tmp_path):
            pass  # and the directory is free again once the first one closed


PUBLISHER = """
import asyncio, sys
from megam import topology
from megam.bus.embedded import EmbeddedBus
from tests.test_bus_contract import DEAD, EVENTS, STREAM, WORK

async def main():
    bus = EmbeddedBus(sys.argv[1])
    await bus.connect()
    await bus.declare(topology.EXCHANGES, (WORK, DEAD, EVENTS, STREAM))
    acked = asyncio.Event()

    async def ack_first(delivery):
        if delivery.body == b"0":
            await delivery.ack(confirmed=True)
            print("acked 0", flush=True)
            acked.set()

    await bus.consume("contract.work", ack_first, prefetch=2)
    for number in range(10_000):
        await bus.publish("megam.requests", "job.x", str(number).encode())
        print("published", number, flush=True)
        if number == 0:
            await acked.wait()

asyncio.run(main())
"""


class TestAcrossASigkill:
    async def test_every_confirmed_publish_and_ack_survives(self, tmp_path: Path) -> None:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            PUBLISHER,
            str(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            cwd=Path(__file__).parents[1],
        )
        assert child.stdout is not None
        lines: list[bytes] = []
        while len(lines) < 300 and (line := await child.stdout.readline()):
            lines.append(line)
        child.kill()  # SIGKILL, mid-publish
        lines += (await child.stdout.read()).splitlines()
        await child.wait()
        published = [int(line.split()[1]) for line in lines if line.startswith(b"published")]
        assert b"acked 0\n" in lines and len(published) >= 250

        async with opened(tmp_path) as bus:
            depth = await bus.queue_depth("contract.work")
            back = await take(bus, "contract.work", depth, ack=True)
        numbers = [int(d.body) for d in back]
        assert 0 not in numbers, "its ack was confirmed"
        assert set(published) - {0} <= set(numbers), "every confirmed publish is there"
        assert numbers == sorted(numbers), "in publish order"
        assert [d.redelivered for d in back[:1]] == [True], "1 was delivered and not acked"


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
