"""Stream queues in the embedded bus: a log kept up to its max age, and readers with cursors."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from typing import Protocol

from megam.bus.base import BusError, Delivery, Handler, Subscription
from megam.bus.messages import Message


class StreamQueue(Protocol):
    log: StreamLog | None
    followers: list[StreamFollower]


_AGE_UNITS = {"Y": 365 * 86400, "M": 30 * 86400, "D": 86400, "h": 3600, "m": 60, "s": 1}


def max_age_seconds(max_age: str) -> float:
    """RabbitMQ's ``x-max-age`` (``7D``, ``12h``, ``30m`` …) in seconds."""
    number, unit = max_age[:-1], max_age[-1:]
    if unit not in _AGE_UNITS or not number.isdigit():
        raise ValueError(f"invalid max age {max_age!r}, expected e.g. 7D, 12h, 30m, 10s")
    return int(number) * _AGE_UNITS[unit]


class StreamLog:
    """A stream's messages in offset order; those older than the max age are dropped.

    Ages are wall-clock (``Message.at``), so that they hold across a restart.
    """

    def __init__(self, max_age: str) -> None:
        self.max_age = max_age_seconds(max_age)
        self.entries: collections.deque[Message] = collections.deque()
        self.next_offset = 0

    def reserve(self) -> int:
        """The offset of a message about to be appended (it may never be: offsets can skip)."""
        offset, self.next_offset = self.next_offset, self.next_offset + 1
        return offset

    def append(self, message: Message) -> None:
        if message.offset is None:
            message.offset = self.reserve()
        self.next_offset = max(self.next_offset, message.offset + 1)
        self.entries.append(message)

    def drop_expired(self) -> int | None:
        """Drop what is older than the max age; the last offset dropped, if any."""
        oldest = time.time() - self.max_age
        dropped = None
        while self.entries and self.entries[0].at < oldest:
            dropped = self.entries.popleft().offset
        return dropped

    def start(self, offset: str | int) -> int:
        if offset == "first":
            return self._first()
        if offset in ("next", "last"):
            return self.next_offset
        if isinstance(offset, int):
            return max(offset, self._first())
        raise BusError(f"unsupported stream offset {offset!r}")

    def _first(self) -> int:
        first = self.entries[0].offset if self.entries else None
        return self.next_offset if first is None else first

    def after(self, offset: int) -> Message | None:
        """The first entry at ``offset`` or later that is still kept."""
        for message in self.entries:
            assert message.offset is not None
            if message.offset >= offset:
                return message
        return None


class StreamDelivery(Delivery):
    def __init__(self, follower: StreamFollower, message: Message) -> None:
        self._follower = follower
        self.body = message.body
        self.routing_key = message.routing_key
        self.exchange = message.exchange
        self.headers = {**message.headers, "x-stream-offset": message.offset}
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


class StreamFollower(Subscription):
    """One reader of a stream: its own cursor, at most ``prefetch`` unacked, in offset order."""

    def __init__(
        self, queue: StreamQueue, handler: Handler, offset: str | int, prefetch: int
    ) -> None:
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
                message = self.queue.log.after(self.cursor)
                if message is None or message.offset is None:
                    break
                self.cursor = message.offset + 1
                self.unacked += 1
                task = asyncio.create_task(self._handle(StreamDelivery(self, message)))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _handle(self, delivery: StreamDelivery) -> None:
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
