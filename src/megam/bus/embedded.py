"""An in-process broker with RabbitMQ's semantics, for ``megam up`` with no external service.

Messages live in memory: they survive a crashed handler (redelivery) but not a crashed process.
``megam up`` is a single process, so that is the same failure domain as its SQLite store's writer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import time
from collections.abc import Iterable
from typing import Any

from megam.bus.base import Bus, BusError, Delivery, Handler, PublishError, Subscription
from megam.topology import DEAD, Exchange, Queue


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


class _Message:
    __slots__ = (
        "body",
        "correlation_id",
        "deliveries",
        "exchange",
        "headers",
        "message_id",
        "routing_key",
    )

    def __init__(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        message_id: str | None,
        correlation_id: str | None,
        headers: dict[str, Any],
    ) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.body = body
        self.message_id = message_id
        self.correlation_id = correlation_id
        self.headers = headers
        self.deliveries = 0


class _Queue:
    def __init__(self, spec: Queue) -> None:
        self.spec = spec
        self.ready: collections.deque[_Message] = collections.deque()
        self.consumers: list[_Consumer] = []
        self.next_consumer = 0
        self.wakeup = asyncio.Event()
        self.log = _StreamLog(spec.stream_max_age) if spec.stream_max_age else None
        self.followers: list[_StreamFollower] = []

    def push(self, message: _Message, *, front: bool = False) -> None:
        if self.log is not None:
            self.log.append(message)
            for follower in self.followers:
                follower.kick.set()
            return
        (self.ready.appendleft if front else self.ready.append)(message)
        for consumer in self.consumers:
            consumer.kick.set()


_AGE_UNITS = {"Y": 365 * 86400, "M": 30 * 86400, "D": 86400, "h": 3600, "m": 60, "s": 1}


def max_age_seconds(max_age: str) -> float:
    """RabbitMQ's ``x-max-age`` (``7D``, ``12h``, ``30m`` …) in seconds."""
    number, unit = max_age[:-1], max_age[-1:]
    if unit not in _AGE_UNITS or not number.isdigit():
        raise ValueError(f"invalid max age {max_age!r}, expected e.g. 7D, 12h, 30m, 10s")
    return int(number) * _AGE_UNITS[unit]


class _StreamLog:
    """A stream's messages with their offsets; entries older than the max age are dropped."""

    def __init__(self, max_age: str) -> None:
        self.max_age = max_age_seconds(max_age)
        self.entries: collections.deque[tuple[int, float, _Message]] = collections.deque()
        self.next_offset = 0

    def append(self, message: _Message) -> None:
        now = time.monotonic()
        self.entries.append((self.next_offset, now, message))
        self.next_offset += 1
        while self.entries and now - self.entries[0][1] > self.max_age:
            self.entries.popleft()

    def start(self, offset: str | int) -> int:
        if offset == "first":
            return self.entries[0][0] if self.entries else self.next_offset
        if offset in ("next", "last"):
            return self.next_offset
        if isinstance(offset, int):
            return max(offset, self.entries[0][0] if self.entries else self.next_offset)
        raise BusError(f"unsupported stream offset {offset!r}")

    def after(self, offset: int) -> tuple[int, _Message] | None:
        """The first entry at ``offset`` or later that is still kept."""
        for entry_offset, _, message in self.entries:
            if entry_offset >= offset:
                return entry_offset, message
        return None


class _EmbeddedDelivery(Delivery):
    def __init__(self, consumer: _Consumer, message: _Message) -> None:
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
        self._settle()  # in process: an ack takes effect at once, so it is always confirmed

    async def reject(self, *, requeue: bool) -> None:
        self._settle()
        if requeue:
            self._consumer.queue.push(self._message, front=True)
        else:
            self._consumer.bus._dead_letter(self._consumer.queue, self._message, "rejected")

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
        while True:
            await self.kick.wait()
            self.kick.clear()
            while self.queue.ready and len(self.unacked) < self.prefetch:
                message = self.queue.ready.popleft()
                message.deliveries += 1
                limit = self.queue.spec.delivery_limit
                if limit is not None and message.deliveries > limit + 1:
                    self.bus._dead_letter(self.queue, message, "delivery_limit")
                    continue
                delivery = _EmbeddedDelivery(self, message)
                self.unacked.add(delivery)
                task = asyncio.create_task(self._handle(delivery))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

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


class _StreamDelivery(Delivery):
    def __init__(self, follower: _StreamFollower, offset: int, message: _Message) -> None:
        self._follower = follower
        self.body = message.body
        self.routing_key = message.routing_key
        self.exchange = message.exchange
        self.headers = {**message.headers, "x-stream-offset": offset}
        self.message_id = message.message_id
        self.correlation_id = message.correlation_id
        self.redelivered = False
        self._settled = False

    @property
    def settled(self) -> bool:
        return self._settled

    async def ack(self, *, confirmed: bool = False) -> None:
        self._settle()

    async def reject(self, *, requeue: bool) -> None:
        self._settle()  # a stream keeps every message: there is nothing to requeue or drop

    def _settle(self) -> None:
        if self._settled:
            raise BusError("delivery already settled")
        self._settled = True
        self._follower.release()


class _StreamFollower(Subscription):
    """One reader of a stream: its own cursor, at most ``prefetch`` unacked, in offset order."""

    def __init__(self, queue: _Queue, handler: Handler, offset: str | int, prefetch: int) -> None:
        assert queue.log is not None
        self.queue = queue
        self.handler = handler
        self.prefetch = prefetch
        self.cursor = queue.log.start(offset)
        self.unacked = 0
        self.kick = asyncio.Event()
        self.kick.set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.pump = asyncio.create_task(self._pump())

    def release(self) -> None:
        self.unacked -= 1
        self.kick.set()

    async def _pump(self) -> None:
        assert self.queue.log is not None
        while True:
            await self.kick.wait()
            self.kick.clear()
            while self.unacked < self.prefetch:
                entry = self.queue.log.after(self.cursor)
                if entry is None:
                    break
                offset, message = entry
                self.cursor = offset + 1
                self.unacked += 1
                task = asyncio.create_task(self._handle(_StreamDelivery(self, offset, message)))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _handle(self, delivery: _StreamDelivery) -> None:
        # A stream cannot requeue: a message whose handler fails is passed over.
        with contextlib.suppress(Exception):
            await self.handler(delivery)
        if not delivery.settled:
            await delivery.ack()

    async def stop_receiving(self) -> None:
        self.pump.cancel()
        if self in self.queue.followers:
            self.queue.followers.remove(self)

    async def cancel(self) -> None:
        await self.stop_receiving()


class _Claim:
    """Who claimed a key (``claim_once``), kept until unused for ``keep`` seconds (as RabbitMQ's
    ``x-expires``: set by whoever made the claim)."""

    __slots__ = ("holder", "keep", "last_used")

    def __init__(self, holder: str, keep: float, now: float) -> None:
        self.holder = holder
        self.keep = keep
        self.last_used = now

    def forgotten(self, now: float) -> bool:
        return now - self.last_used > self.keep


class EmbeddedBus(Bus):
    def __init__(self) -> None:
        self._exchanges: dict[str, Exchange] = {}
        self._bindings: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
        self._queues: dict[str, _Queue] = {}
        self._connected = False
        self._temp_names = itertools.count(1)
        self._claims: collections.OrderedDict[str, _Claim] = collections.OrderedDict()
        """Least recently claimed first, so that the forgotten ones are found at the front."""

    async def connect(self) -> None:
        self._connected = True

    async def close(self) -> None:
        for queue in list(self._queues.values()):
            for consumer in list(queue.consumers):
                await consumer.cancel()
            for follower in list(queue.followers):
                await follower.cancel()
        self._connected = False

    @property
    def connected(self) -> bool:
        return self._connected

    async def declare(self, exchanges: Iterable[Exchange], queues: Iterable[Queue]) -> None:
        self._check()
        for exchange in exchanges:
            self._exchanges.setdefault(exchange.name, exchange)
        for spec in queues:
            if spec.name not in self._queues:
                self._queues[spec.name] = _Queue(spec)
            for exchange, key in spec.bindings:
                if (spec.name, key) not in self._bindings[exchange]:
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
        for queue in routed:
            queue.push(
                _Message(
                    exchange, routing_key, body, message_id, correlation_id, dict(headers or {})
                )
            )

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
        follower = _StreamFollower(target, handler, offset, max(1, prefetch))
        target.followers.append(follower)
        return follower

    async def consume_temporary(
        self, bindings: Iterable[tuple[str, str]], handler: Handler, *, prefetch: int = 100
    ) -> Subscription:
        self._check()
        spec = Queue(
            f"embedded.tmp.{next(self._temp_names)}", bindings=tuple(bindings), quorum=False
        )
        await self.declare((), (spec,))
        return self._attach(self._queues[spec.name], handler, prefetch, temporary=True)

    async def queue_depth(self, queue: str) -> int:
        self._check()
        target = self._queue(queue)
        return len(target.log.entries) if target.log is not None else len(target.ready)

    async def claim_once(self, key: str, holder: str, keep_seconds: float) -> str | None:
        self._check()
        # One event loop and no await from the look to the write: claimants cannot interleave.
        now = time.monotonic()
        while self._claims and next(iter(self._claims.values())).forgotten(now):
            self._claims.popitem(last=False)
        claim = self._claims.pop(key, None)
        if claim is None or claim.forgotten(now):
            claim = _Claim(holder, keep_seconds, now)
        claim.last_used = now  # asking again keeps a claim, as on RabbitMQ
        self._claims[key] = claim
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

    def _dead_letter(self, queue: _Queue, message: _Message, reason: str) -> None:
        if queue.spec.dead_letter_to is None:
            return
        headers = dict(message.headers)
        headers.setdefault("x-first-death-reason", reason)
        headers.setdefault("x-first-death-queue", queue.spec.name)
        for target in self._route(DEAD.name, queue.spec.dead_letter_to):
            target.push(
                _Message(
                    message.exchange,
                    message.routing_key,
                    message.body,
                    message.message_id,
                    message.correlation_id,
                    headers,
                )
            )

    def _unbind(self, queue_name: str) -> None:
        for exchange, bindings in self._bindings.items():
            self._bindings[exchange] = [b for b in bindings if b[0] != queue_name]

    def _check(self) -> None:
        if not self._connected:
            raise BusError("embedded bus is not connected")
