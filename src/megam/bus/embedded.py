"""An in-process broker with RabbitMQ's semantics, for ``megam up`` with no external service.

Given a directory (``megam up`` gives ``<data_dir>/bus``), it is as durable as RabbitMQ: declared
exchanges and queues, every message of a declared queue until it is acked or dead-lettered, its
delivery count, stream messages up to their max age and ``claim_once`` markers are kept in a
SQLite journal (``megam.bus.journal``), committed before ``publish`` returns (the publisher
confirm), and are all back after a stop, clean or SIGKILL: unacked deliveries come again marked
``redelivered``. Temporary queues stay in memory, as RabbitMQ's exclusive ones die with their
connection. Without a directory everything lives in memory only (tests that want a bare broker).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from megam import log
from megam.backoff import Backoff
from megam.bus import journal
from megam.bus.base import Bus, BusError, Delivery, Handler, PublishError, Subscription
from megam.bus.journal import Journal, Synchronous
from megam.bus.messages import Message, decode_spec, encode_spec, journal_row, restored
from megam.bus.streams import StreamFollower, StreamLog, max_age_seconds
from megam.topology import DEAD, Exchange, Queue

logger = log.get("megam.bus.embedded")


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` is zero or more words."""
    return _match(pattern.split("."), key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head == "*" or head == words[0]) and _match(rest, words[1:])


class _Queue:
    def __init__(self, spec: Queue, kept_in: Journal | None) -> None:
        self.spec = spec
        self.journal = kept_in
        """Where its messages are kept; None for a queue that lives in memory only."""
        self.ready: collections.deque[Message] = collections.deque()
        self.consumers: list[_Consumer] = []
        self.log = StreamLog(spec.stream_max_age) if spec.stream_max_age else None
        self.followers: list[StreamFollower] = []

    def push(self, message: Message, *, front: bool = False) -> None:
        if self.log is not None:
            self.log.append(message)
            self.forget_expired()
            for follower in self.followers:
                follower.kick.set()
            return
        (self.ready.appendleft if front else self.ready.append)(message)
        for consumer in self.consumers:
            consumer.kick.set()

    def forget_expired(self) -> None:
        assert self.log is not None
        dropped = self.log.drop_expired()
        if dropped is not None and self.journal is not None:
            self.journal.write_later([journal.drop_stream_until(self.spec.name, dropped)])


class _EmbeddedDelivery(Delivery):
    def __init__(self, consumer: _Consumer, message: Message) -> None:
        self._consumer = consumer
        self._message = message
        self.body = message.body
        self.routing_key = message.routing_key
        self.exchange = message.exchange
        self.headers = dict(message.headers)
        self.message_id = message.message_id
        self.correlation_id = message.correlation_id
        self.redelivered = message.deliveries > 1
        self._settled = False

    @property
    def settled(self) -> bool:
        return self._settled

    async def ack(self, *, confirmed: bool = False) -> None:
        self._settle()
        store = self._consumer.queue.journal
        if store is None or self._message.row is None:
            return  # in memory, an ack takes effect at once: it is always confirmed
        forget = [journal.drop_message(self._message.row)]
        if confirmed:
            await store.commit(forget)
        else:
            store.write_later(forget)  # as on RabbitMQ: lost in a crash, it is a redelivery

    async def reject(self, *, requeue: bool) -> None:
        self._settle()
        if requeue:
            self._consumer.queue.push(self._message, front=True)
            return
        try:
            await self._consumer.bus._dead_letter(self._consumer.queue, [self._message], "rejected")
        except BusError:
            self._consumer.queue.push(self._message, front=True)  # still where it was
            raise

    def _settle(self) -> None:
        if self._settled:
            raise BusError("delivery already settled")
        self._settled = True
        self._consumer.release(self)


class _Consumer(Subscription):
    def __init__(
        self, bus: EmbeddedBus, queue: _Queue, handler: Handler, prefetch: int, temporary: bool
    ) -> None:
        self.bus = bus
        self.queue = queue
        self.handler = handler
        self.prefetch = prefetch
        self.temporary = temporary
        self.unacked: set[_EmbeddedDelivery] = set()
        self.kick = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.pump = asyncio.create_task(self._pump())

    def release(self, delivery: _EmbeddedDelivery) -> None:
        self.unacked.discard(delivery)
        self.kick.set()

    async def _pump(self) -> None:
        retry = Backoff(first=0.05, cap=2.0)
        while True:
            await self.kick.wait()
            self.kick.clear()
            while self.queue.ready and len(self.unacked) < self.prefetch:
                try:
                    await self._deliver_ready()
                    retry.reset()
                except BusError as exc:  # the journal could not write: those went back
                    logger.error("bus.delivery_failed", queue=self.queue.spec.name, error=str(exc))
                    await retry.wait()

    async def _deliver_ready(self) -> None:
        """Take what ready messages the prefetch allows, count their delivery in the journal
        (so a crash from here on makes them redeliveries), then hand them to the handler."""
        taken: list[_EmbeddedDelivery] = []
        over_limit: list[Message] = []
        limit = self.queue.spec.delivery_limit
        while self.queue.ready and len(self.unacked) < self.prefetch:
            message = self.queue.ready.popleft()
            message.deliveries += 1
            if limit is not None and message.deliveries > limit + 1:
                over_limit.append(message)
                continue
            delivery = _EmbeddedDelivery(self, message)
            self.unacked.add(delivery)  # from here on a cancel hands it back
            taken.append(delivery)
        counted = [
            journal.count_delivery(d._message.row, d._message.deliveries)
            for d in taken
            if d._message.row is not None
        ]
        try:
            await self.bus._dead_letter(self.queue, over_limit, "delivery_limit", counted)
        except BusError:
            self._hand_back(taken)
            for message in reversed(over_limit):
                self.queue.ready.appendleft(message)
            raise
        except asyncio.CancelledError:  # stopped meanwhile: none of them reached the handler
            self._hand_back(taken)
            raise
        for delivery in taken:
            if delivery in self.unacked:  # not handed back by a cancel meanwhile
                task = asyncio.create_task(self._handle(delivery))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    def _hand_back(self, taken: list[_EmbeddedDelivery]) -> None:
        """Return deliveries that never reached the handler, as if never delivered."""
        for delivery in reversed(taken):
            if delivery in self.unacked:
                self.unacked.discard(delivery)
                delivery._settled = True
                delivery._message.deliveries -= 1  # the next delivery's count overwrites it
                self.queue.push(delivery._message, front=True)

    async def _handle(self, delivery: _EmbeddedDelivery) -> None:
        try:
            await self.handler(delivery)
        except Exception:  # the contract: a failing handler's delivery is requeued
            if not delivery.settled:
                await delivery.reject(requeue=True)

    async def stop_receiving(self) -> None:
        self.pump.cancel()
        if self in self.queue.consumers:
            self.queue.consumers.remove(self)

    async def cancel(self) -> None:
        await self.stop_receiving()
        for delivery in list(self.unacked):
            delivery._settled = True
            self.queue.push(delivery._message, front=True)
        self.unacked.clear()
        if self.temporary:
            self.bus._queues.pop(self.queue.spec.name, None)
            self.bus._unbind(self.queue.spec.name)


class _Claim:
    """Who claimed a key (``claim_once``), kept until unused for ``keep`` seconds (as RabbitMQ's
    ``x-expires``: set by whoever made the claim). Wall-clock, so that it holds across a restart."""

    __slots__ = ("holder", "keep", "last_used")

    def __init__(self, holder: str, keep: float, now: float) -> None:
        self.holder = holder
        self.keep = keep
        self.last_used = now

    def forgotten(self, now: float) -> bool:
        return now - self.last_used > self.keep


class EmbeddedBus(Bus):
    def __init__(
        self, directory: Path | str | None = None, *, synchronous: Synchronous = "NORMAL"
    ) -> None:
        """In memory only without ``directory``; durable in ``directory`` with it."""
        self._journal = Journal(Path(directory), synchronous=synchronous) if directory else None
        self._connected = False
        self._temp_names = itertools.count(1)
        self._reset()

    def _reset(self) -> None:
        self._exchanges: dict[str, Exchange] = {}
        self._bindings: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
        self._queues: dict[str, _Queue] = {}
        self._declared: set[str] = set()
        """Queues declared since ``connect``: a queue only restored from the journal takes the
        spec of its first declaration (the code's topology wins over a previous version's)."""
        self._rows = itertools.count(1)
        self._claims: collections.OrderedDict[str, _Claim] = collections.OrderedDict()
        """Least recently claimed first, so that the forgotten ones are found at the front."""

    @property
    def durable(self) -> bool:
        return self._journal is not None

    async def connect(self) -> None:
        if self._journal is not None and not self._connected:
            self._reset()
            self._restore(self._journal.open())
            self._connected = True
            await self._dead_letter_spent()
        self._connected = True

    async def _dead_letter_spent(self) -> None:
        """Dead-letter what the stop handed back after its last allowed delivery, as RabbitMQ
        does with a message returned over its queue's delivery limit."""
        for queue in list(self._queues.values()):
            limit = queue.spec.delivery_limit
            if limit is None or queue.log is not None:
                continue
            spent = [message for message in queue.ready if message.deliveries > limit]
            if spent:
                queue.ready = collections.deque(m for m in queue.ready if m.deliveries <= limit)
                await self._dead_letter(queue, spent, "delivery_limit")

    async def close(self) -> None:
        for queue in list(self._queues.values()):
            for consumer in list(queue.consumers):
                await consumer.cancel()
            for follower in list(queue.followers):
                await follower.cancel()
        if self._journal is not None and self._connected:
            await self._journal.close()
        self._connected = False

    @property
    def connected(self) -> bool:
        return self._connected

    async def declare(self, exchanges: Iterable[Exchange], queues: Iterable[Queue]) -> None:
        self._check()
        statements: list[journal.Statement] = []
        for exchange in exchanges:
            if exchange.name not in self._exchanges:
                statements.append(journal.put_exchange(exchange.name, exchange.type))
            self._exchanges.setdefault(exchange.name, exchange)
        for spec in queues:
            if spec.name not in self._declared:
                self._declared.add(spec.name)
                self._define_queue(spec)
                statements.append(journal.put_queue(spec.name, encode_spec(spec)))
            for exchange, key in spec.bindings:
                if (spec.name, key) not in self._bindings[exchange]:
                    self._bindings[exchange].append((spec.name, key))
        if self._journal is not None and statements:
            await self._journal.commit(statements)

    def _define_queue(self, spec: Queue, *, durable: bool = True) -> None:
        """Create ``spec``'s queue, or give a queue restored from the journal this spec."""
        existing = self._queues.get(spec.name)
        if existing is not None and bool(existing.spec.stream_max_age) == bool(spec.stream_max_age):
            if existing.log is not None and spec.stream_max_age:
                existing.log.max_age = max_age_seconds(spec.stream_max_age)
            existing.spec = spec
            self._unbind(spec.name)
        else:
            self._queues[spec.name] = _Queue(spec, self._journal if durable else None)
        for exchange, key in spec.bindings:
            self._bindings[exchange].append((spec.name, key))

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None = None,
        correlation_id: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> None:
        self._check()
        routed = self._route(exchange, routing_key)
        if not routed:
            raise PublishError(f"message to {exchange!r} with key {routing_key!r} is unroutable")
        fields = (exchange, routing_key, body, message_id, correlation_id)
        await self._enqueue([(queue, Message(*fields, dict(headers or {}))) for queue in routed])

    async def _enqueue(
        self, copies: list[tuple[_Queue, Message]], also: Iterable[journal.Statement] = ()
    ) -> None:
        """Put each message in its queue once the journal has it (and ``also``): in commit order,
        so a consumer never sees a message that a crash could still take away."""
        statements = list(also)
        for queue, message in copies:
            if queue.log is not None:
                message.offset = queue.log.reserve()
            if queue.journal is not None:
                message.row = next(self._rows)
                statements.append(journal.put_message(journal_row(queue.spec.name, message)))

        def visible() -> None:
            for queue, message in copies:
                queue.push(message)

        if self._journal is None or not statements:
            visible()
            return
        await self._journal.commit(statements, visible)

    async def consume(self, queue: str, handler: Handler, *, prefetch: int) -> Subscription:
        self._check()
        target = self._queue(queue)
        if target.log is not None:
            raise BusError(f"{queue!r} is a stream: read it with follow_stream")
        return self._attach(target, handler, prefetch, temporary=False)

    async def follow_stream(
        self, queue: str, handler: Handler, *, offset: str | int = "first", prefetch: int = 100
    ) -> Subscription:
        self._check()
        target = self._queue(queue)
        if target.log is None:
            raise BusError(f"{queue!r} is not a stream")
        target.forget_expired()
        follower = StreamFollower(target, handler, offset, max(1, prefetch))
        target.followers.append(follower)
        return follower

    async def consume_temporary(
        self, bindings: Iterable[tuple[str, str]], handler: Handler, *, prefetch: int = 100
    ) -> Subscription:
        self._check()
        spec = Queue(
            f"embedded.tmp.{next(self._temp_names)}", bindings=tuple(bindings), quorum=False
        )
        self._define_queue(spec, durable=False)  # exclusive: it dies with its subscription
        return self._attach(self._queues[spec.name], handler, prefetch, temporary=True)

    async def queue_depth(self, queue: str) -> int:
        self._check()
        target = self._queue(queue)
        return len(target.log.entries) if target.log is not None else len(target.ready)

    async def claim_once(self, key: str, holder: str, keep_seconds: float) -> str | None:
        self._check()
        # One event loop and no await from the look to the write: claimants cannot interleave.
        now = time.time()
        statements: list[journal.Statement] = []
        while self._claims and next(iter(self._claims.values())).forgotten(now):
            forgotten, _ = self._claims.popitem(last=False)
            statements.append(journal.drop_claim(forgotten))
        claim = self._claims.pop(key, None)
        if claim is None or claim.forgotten(now):
            claim = _Claim(holder, keep_seconds, now)
        claim.last_used = now  # asking again keeps a claim, as on RabbitMQ
        self._claims[key] = claim
        if self._journal is not None:
            statements.append(journal.put_claim(key, claim.holder, claim.keep, now))
            await self._journal.commit(statements)  # BusError: the answer cannot be known
        return None if claim.holder == holder else claim.holder

    def _queue(self, name: str) -> _Queue:
        try:
            return self._queues[name]
        except KeyError:
            raise BusError(f"no queue {name!r}") from None

    def _attach(self, queue: _Queue, handler: Handler, prefetch: int, temporary: bool) -> _Consumer:
        consumer = _Consumer(self, queue, handler, max(1, prefetch), temporary)
        queue.consumers.append(consumer)
        consumer.kick.set()
        return consumer

    def _route(self, exchange: str, routing_key: str) -> list[_Queue]:
        kind = self._exchanges.get(exchange)
        if kind is None:
            raise PublishError(f"no exchange {exchange!r}")
        names: dict[str, None] = {}
        for queue_name, pattern in self._bindings[exchange]:
            if (
                kind.type == "fanout"
                or (kind.type == "direct" and pattern == routing_key)
                or (kind.type == "topic" and topic_matches(pattern, routing_key))
            ):
                names[queue_name] = None
        return [self._queues[name] for name in names if name in self._queues]

    async def _dead_letter(
        self,
        queue: _Queue,
        messages: list[Message],
        reason: str,
        also: Iterable[journal.Statement] = (),
    ) -> None:
        """Move ``messages`` out of ``queue`` into its dead letters, in one commit with ``also``."""
        statements = list(also)
        copies: list[tuple[_Queue, Message]] = []
        for message in messages:
            if message.row is not None and queue.journal is not None:
                statements.append(journal.drop_message(message.row))
            if queue.spec.dead_letter_to is None:
                continue
            headers = dict(message.headers)
            headers.setdefault("x-first-death-reason", reason)
            headers.setdefault("x-first-death-queue", queue.spec.name)
            for target in self._route(DEAD.name, queue.spec.dead_letter_to):
                copies.append((target, message.copy(headers)))
        await self._enqueue(copies, statements)

    def _restore(self, contents: journal.Contents) -> None:
        """Rebuild the broker from what the journal kept."""
        for name, kind in contents.exchanges:
            self._exchanges[name] = Exchange(name, kind)  # type: ignore[arg-type]
        for _, spec in contents.queues:
            self._define_queue(decode_spec(spec))
        last_row = 0
        for row in contents.messages:
            last_row = row[0]
            queue = self._queues.get(row[1])
            if queue is None:
                continue  # cannot happen: a message's queue is written before it
            queue.push(restored(row))
        self._rows = itertools.count(last_row + 1)
        now = time.time()
        for key, holder, keep, last_used in contents.claims:
            claim = _Claim(holder, keep, last_used)
            if not claim.forgotten(now):
                self._claims[key] = claim

    def _unbind(self, queue_name: str) -> None:
        for exchange, bindings in self._bindings.items():
            self._bindings[exchange] = [b for b in bindings if b[0] != queue_name]

    def _check(self) -> None:
        if not self._connected:
            raise BusError("embedded bus is not connected")
