"""The event outbox: every status and log event herk publishes goes through it, in order, and a
running job never waits for the broker to take them.

``put`` (from any thread: the worker's log stream) and ``deliver`` (on the loop: the master's
statuses, which it awaits before it acknowledges a request) append to one queue; one sender on
the loop publishes it in order, a window at a time, each confirmed by the broker. While the
broker is away, the sender waits and tries again (``megam.backoff``) and the queue grows:

* in memory up to ``memory_limit`` bytes of message bodies;
* beyond that, in segment files in the node's data dir (``<data_dir>/herk/<node>/outbox``), kept
  until every message in them is confirmed, so a node that stops, or is killed, with events not
  delivered sends them when it starts again under the same name;
* beyond ``disk_limit`` bytes on disk, **log batches** are refused: each one is counted, per job
  and in ``megam_herk_events_dropped_total``, logged as ``events.dropped``, and the job's log ends
  with a line saying how many of its lines were not kept (herk.worker). Status events are never
  refused: they are two per attempt, and a job's outcome is what must not be lost.

Order: what goes out is what came in, messages from memory before later ones spilled to disk.
A window whose publish failed part-way is sent again from its first unconfirmed message, so a
message may arrive twice (the gateway keeps the first of a status, and ignores a log line it has).
A message the broker refuses (unroutable) is logged as ``events.refused`` and its waiter told.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import struct
import threading
from pathlib import Path
from typing import BinaryIO

import msgspec

from herk import metrics
from megam import log
from megam.backoff import Backoff
from megam.bus import Bus, BusError, PublishError

logger = log.get("herk.outbox")

MEMORY_LIMIT = 16 * 1024 * 1024
DISK_LIMIT = 1024 * 1024 * 1024
SEGMENT_BYTES = 1024 * 1024
"""A spilled segment is loaded back whole: memory holds at most this much more than its limit."""
WINDOW = 64
"""Messages published at once, each awaited for its confirm."""
FIRST_SEGMENT = 1_000_000_000
"""Segment numbers start high so that a stop can write what memory held *before* the rest."""
_LENGTH = struct.Struct(">I")


class Outgoing(msgspec.Struct, array_like=True, frozen=True):
    exchange: str
    routing_key: str
    body: bytes
    message_id: str | None = None
    correlation_id: str | None = None
    job_id: str = ""
    droppable: bool = False
    """A log batch: may be refused once the disk limit is reached (never a status)."""


def outbox_directory(data_dir: Path, herk: str) -> Path:
    return data_dir / "herk" / herk / "outbox"


@dataclasses.dataclass(eq=False)
class _Entry:
    message: Outgoing
    waiter: asyncio.Future[None] | None = None
    segment: int | None = None
    """The segment file it was loaded from, removed once all its entries are confirmed."""


class OutboxClosed(BusError):
    """The node stopped before the broker confirmed the event; it is kept on disk for the next
    start of this node."""


class EventOutbox:
    def __init__(
        self,
        bus: Bus,
        directory: Path,
        *,
        memory_limit: int = MEMORY_LIMIT,
        disk_limit: int = DISK_LIMIT,
    ) -> None:
        self._bus = bus
        self._directory = directory
        self._memory_limit = memory_limit
        self._disk_limit = disk_limit
        self._lock = threading.Lock()
        self._memory: collections.deque[_Entry] = collections.deque()
        self._memory_bytes = 0
        self._segments = _Segments(directory)
        self._unconfirmed: dict[int, int] = {}
        """Loaded segment → entries of it not confirmed yet."""
        self._waiters: dict[tuple[int, int], asyncio.Future[None]] = {}
        self._dropped: collections.Counter[str] = collections.Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._closed = False

    # -- putting in ------------------------------------------------------------------------

    def put(self, message: Outgoing) -> bool:
        """From any thread, at once; False if a log batch was refused (the disk limit)."""
        return self._append(message, None)

    async def deliver(self, message: Outgoing) -> None:
        """On the loop: returns once the broker confirmed ``message``."""
        waiter = asyncio.get_running_loop().create_future()
        self._append(message, waiter)
        await waiter

    def dropped(self, job_id: str) -> int:
        """How many of the job's log batches were refused so far."""
        with self._lock:
            return self._dropped[job_id]

    def _append(self, message: Outgoing, waiter: asyncio.Future[None] | None) -> bool:
        with self._lock:
            if self._closed:
                if waiter is not None:
                    waiter.set_exception(OutboxClosed("herk node stopped"))
                return False
            size = len(message.body)
            if self._segments.pending or self._memory_bytes + size > self._memory_limit:
                if message.droppable and self._segments.bytes + size > self._disk_limit:
                    self._drop(message)
                    return False
                try:
                    token = self._segments.append(message)
                except OSError as exc:  # a full or read-only disk: memory, over its limit
                    logger.error("outbox.spill_failed", error=str(exc))
                    self._keep_in_memory(message, waiter)
                else:
                    if waiter is not None:
                        self._waiters[token] = waiter
            else:
                self._keep_in_memory(message, waiter)
        self._poke()
        return True

    def _keep_in_memory(self, message: Outgoing, waiter: asyncio.Future[None] | None) -> None:
        self._memory.append(_Entry(message, waiter))
        self._memory_bytes += len(message.body)

    def _drop(self, message: Outgoing) -> None:
        first = self._dropped[message.job_id] == 0
        self._dropped[message.job_id] += 1
        metrics.EVENTS_DROPPED.labels("log").inc()
        if first:
            logger.warning(
                "events.dropped",
                job_id=message.job_id,
                reason="the event buffer is full (broker away): log batches are not kept",
            )

    def _poke(self) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._wake.set)

    # -- sending ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Send what an earlier run of this node left on disk first, then what comes."""
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._segments.open)
        if self._segments.pending:
            logger.info("outbox.recovered", segments=len(self._segments.pending))
        self._sender = asyncio.create_task(self._send_forever())

    @property
    def backlog(self) -> int:
        """Messages waiting in memory (not counting those spilled to disk)."""
        return len(self._memory)

    async def _send_forever(self) -> None:
        backoff = Backoff(0.2, 5.0)
        while True:
            window = self._window()
            if not window:
                self._wake.clear()
                if not self._window():
                    await self._wake.wait()
                continue
            sent = await self._publish(window)
            self._settle(window[:sent])
            if sent < len(window):
                await backoff.wait()
            else:
                backoff.reset()

    def _window(self) -> list[_Entry]:
        with self._lock:
            if not self._memory and self._segments.pending:
                self._load_segment()
            return list(_take(self._memory, WINDOW))

    def _load_segment(self) -> None:
        number, messages = self._segments.load_oldest()
        self._unconfirmed[number] = len(messages)
        for index, message in enumerate(messages):
            waiter = self._waiters.pop((number, index), None)
            self._memory.append(_Entry(message, waiter, number))
            self._memory_bytes += len(message.body)
        if not messages:
            self._segments.remove(number)
            del self._unconfirmed[number]

    async def _publish(self, window: list[_Entry]) -> int:
        """How many of the window, from its start, the broker confirmed (or refused for good)."""
        results = await asyncio.gather(
            *(self._publish_one(entry.message) for entry in window), return_exceptions=True
        )
        for index, result in enumerate(results):
            entry = window[index]
            if isinstance(result, PublishError):
                logger.error("events.refused", error=str(result), job_id=entry.message.job_id)
                if entry.waiter is not None and not entry.waiter.done():
                    entry.waiter.set_exception(result)
                entry.waiter = None
            elif isinstance(result, BaseException):
                logger.warning("events.waiting_for_broker", error=str(result), backlog=len(window))
                return index
        return len(window)

    async def _publish_one(self, message: Outgoing) -> None:
        await self._bus.publish(
            message.exchange,
            message.routing_key,
            message.body,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
        )

    def _settle(self, entries: list[_Entry]) -> None:
        with self._lock:
            for entry in entries:
                self._memory.popleft()
                self._memory_bytes -= len(entry.message.body)
                if entry.segment is not None:
                    self._confirmed_from(entry.segment)
        for entry in entries:
            if entry.waiter is not None and not entry.waiter.done():
                entry.waiter.set_result(None)

    def _confirmed_from(self, segment: int) -> None:
        self._unconfirmed[segment] -= 1
        if self._unconfirmed[segment] == 0:
            del self._unconfirmed[segment]
            self._segments.remove(segment)

    # -- stopping --------------------------------------------------------------------------

    async def close(self, grace: float) -> None:
        """Deliver for up to ``grace`` s; keep what is left on disk for the next start."""
        try:
            await asyncio.wait_for(self._until_empty(), grace)
        except TimeoutError:
            logger.warning("outbox.kept", messages=len(self._memory), reason="broker away")
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        with self._lock:
            self._closed = True
            leftovers = [entry for entry in self._memory if entry.segment is None]
            self._segments.keep_first([entry.message for entry in leftovers])
            self._segments.close()
            waiters = [e.waiter for e in self._memory if e.waiter is not None]
            waiters += self._waiters.values()
            self._memory.clear()
            self._waiters.clear()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(OutboxClosed("herk node stopped; kept for its next start"))

    async def _until_empty(self) -> None:
        while True:
            with self._lock:
                if not self._memory and not self._segments.pending:
                    return
            self._wake.set()
            await asyncio.sleep(0.05)


def _take(queue: collections.deque[_Entry], count: int) -> list[_Entry]:
    return [queue[index] for index in range(min(count, len(queue)))]


class _Segments:
    """Spilled messages, in numbered files of length-prefixed records, oldest first."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pending: list[int] = []
        """Segments not loaded yet, oldest first (the last one may be being written)."""
        self.bytes = 0
        self._writer: BinaryIO | None = None
        self._writing: int | None = None
        self._written = 0
        self._records = 0
        self._next = FIRST_SEGMENT

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.directory.glob("*.spill")):
            number = int(path.stem)
            self.pending.append(number)
            self.bytes += path.stat().st_size
            self._next = max(self._next, number + 1)

    def append(self, message: Outgoing) -> tuple[int, int]:
        """Write one message; its token is (segment, index in it)."""
        if self._writer is None or self._written >= SEGMENT_BYTES:
            self._rotate()
        assert self._writer is not None and self._writing is not None
        record = msgspec.msgpack.encode(message)
        self._writer.write(_LENGTH.pack(len(record)) + record)
        self._writer.flush()
        self._written += _LENGTH.size + len(record)
        self.bytes += _LENGTH.size + len(record)
        token = (self._writing, self._records)
        self._records += 1
        return token

    def _rotate(self) -> None:
        self._close_writer()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._writing, self._next = self._next, self._next + 1
        self._writer = open(self._path(self._writing), "ab")  # noqa: SIM115 - kept open
        self._written = self._records = 0
        self.pending.append(self._writing)

    def load_oldest(self) -> tuple[int, list[Outgoing]]:
        number = self.pending.pop(0)
        if number == self._writing:
            self._close_writer()
        return number, _read(self._path(number))

    def remove(self, number: int) -> None:
        path = self._path(number)
        try:
            self.bytes -= path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            pass

    def keep_first(self, messages: list[Outgoing]) -> None:
        """At a stop: what memory held goes into a segment before every other one."""
        if not messages:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        first = min([*self.pending, self._next]) - 1
        with open(self._path(first), "wb") as out:
            for message in messages:
                record = msgspec.msgpack.encode(message)
                out.write(_LENGTH.pack(len(record)) + record)

    def close(self) -> None:
        self._close_writer()

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer, self._writing = None, None

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:012d}.spill"


def _read(path: Path) -> list[Outgoing]:
    """The segment's messages; a record cut short (a crash while writing it) ends it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    messages, offset = [], 0
    decoder = msgspec.msgpack.Decoder(Outgoing)
    while offset + _LENGTH.size <= len(data):
        (length,) = _LENGTH.unpack_from(data, offset)
        start = offset + _LENGTH.size
        if start + length > len(data):
            break
        try:
            messages.append(decoder.decode(data[start : start + length]))
        except msgspec.DecodeError:
            logger.error("outbox.unreadable", path=str(path), offset=offset)
            break
        offset = start + length
    return messages
