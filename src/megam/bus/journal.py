"""The embedded bus's durable half: a SQLite journal in the data dir.

What RabbitMQ keeps on disk, the journal keeps: durable exchanges and queues (with their
bindings), every message of a durable or stream queue until it is acked or dead-lettered (with
its delivery count, so a redelivery after a restart is marked and the delivery limit still
holds), and ``claim_once`` markers. The bus keeps working from memory; the journal is only
written while it runs, and read once, when it opens.

One writer thread owns the connection and commits *groups*: everything submitted while the last
commit ran goes into the next transaction, so a burst of publishes costs one commit, not one per
message. A caller that must know its write is on disk (a publish's confirm, a confirmed ack, a
claim) awaits :meth:`Journal.commit`; a plain ack is :meth:`Journal.write_later` (as on RabbitMQ,
a plain ack lost in a crash means a redelivery).

WAL with ``synchronous=NORMAL`` by default: a commit survives the process being killed at any
moment (SIGKILL, OOM), not a power loss or kernel crash, the same as the SQLite store beside it
(``gateway.store.sqlite_schema``); ``FULL`` fsyncs each group too (see ``bench/bus.py``).

A data dir's journal is opened by one process at a time: an exclusive ``flock`` on
``<dir>/lock``, released by the kernel however the process ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from megam import log
from megam.bus.base import BusError

logger = log.get("megam.bus.journal")

Synchronous = Literal["NORMAL", "FULL"]
Statement = tuple[str, tuple[Any, ...]]

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS exchanges (name TEXT PRIMARY KEY, type TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS queues (name TEXT PRIMARY KEY, spec BLOB NOT NULL)",
    # stream_offset is set for a stream queue's messages only; at is wall-clock seconds
    """CREATE TABLE IF NOT EXISTS messages (
        id INTEGER PRIMARY KEY, queue TEXT NOT NULL, exchange TEXT NOT NULL,
        routing_key TEXT NOT NULL, body BLOB NOT NULL, message_id TEXT, correlation_id TEXT,
        headers BLOB NOT NULL, deliveries INTEGER NOT NULL, stream_offset INTEGER,
        at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, id)",
    """CREATE TABLE IF NOT EXISTS claims (
        key TEXT PRIMARY KEY, holder TEXT NOT NULL, keep REAL NOT NULL, last_used REAL NOT NULL)""",
)

MESSAGE_COLUMNS = (
    "id, queue, exchange, routing_key, body, message_id, correlation_id, headers, deliveries, "
    "stream_offset, at"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Contents:
    """Everything the journal held when it was opened."""

    exchanges: list[tuple[str, str]]
    queues: list[tuple[str, bytes]]
    messages: list[tuple[Any, ...]]
    """Rows of ``MESSAGE_COLUMNS``, oldest first."""
    claims: list[tuple[str, str, float, float]]
    """(key, holder, keep, last_used), least recently used first."""


@dataclasses.dataclass(slots=True)
class _Group:
    statements: list[Statement]
    on_commit: Callable[[], None] | None
    done: asyncio.Future[None] | None


_STOP = object()


class Journal:
    def __init__(self, directory: Path, *, synchronous: Synchronous = "NORMAL") -> None:
        self.directory = directory
        self.path = directory / "bus.db"
        self.synchronous = synchronous
        self._lock_fd: int | None = None
        self._conn: sqlite3.Connection | None = None
        self._pending: queue.SimpleQueue[_Group | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> Contents:
        """Take the data dir's lock, open the database, read what it holds, start the writer."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BusError(f"cannot create the bus directory {self.directory}: {exc}") from exc
        self._lock_fd = _lock(self.directory / "lock")
        try:
            self._conn = _connect(self.path, self.synchronous)
            contents = _read(self._conn)
        except (sqlite3.Error, BusError) as exc:
            self._release()
            raise BusError(f"cannot open the embedded bus journal {self.path}: {exc}") from exc
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._write_groups, name="bus-journal", daemon=True)
        self._thread.start()
        return contents

    async def commit(
        self, statements: Iterable[Statement], on_commit: Callable[[], None] | None = None
    ) -> None:
        """Write ``statements`` in the next group; return once it is committed.

        ``on_commit`` runs on the loop once committed, before any later group's: what it makes
        visible (a message in a queue) appears in commit order.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._submit(_Group(list(statements), on_commit, done))
        await done

    def write_later(self, statements: Iterable[Statement]) -> None:
        """Write ``statements`` in the next group without waiting (a failure is logged)."""
        self._submit(_Group(list(statements), None, None))

    async def close(self) -> None:
        """Write what is pending, then close and release the data dir."""
        if self._thread is not None:
            self._pending.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._release()

    def _submit(self, group: _Group) -> None:
        if self._thread is None or not self._thread.is_alive():
            raise BusError("the embedded bus journal is closed")
        self._pending.put(group)

    def _write_groups(self) -> None:
        assert self._conn is not None and self._loop is not None
        while True:
            first = self._pending.get()
            batch = [first]
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self._pending.get_nowait())
            stop = _STOP in batch
            groups = [item for item in batch if isinstance(item, _Group)]
            if groups:
                error = _apply(self._conn, groups)
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
                    self._loop.call_soon_threadsafe(_settle, groups, error)
            if stop:
                return

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None


def _apply(conn: sqlite3.Connection, groups: list[_Group]) -> BaseException | None:
    try:
        conn.execute("BEGIN IMMEDIATE")
        for group in groups:
            for sql, params in group.statements:
                conn.execute(sql, params)
        conn.execute("COMMIT")
        return None
    except Exception as exc:  # the writer must live on: a dead one would leave callers waiting
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        logger.error("bus.journal_write_failed", error=str(exc), groups=len(groups))
        return exc


def _settle(groups: list[_Group], error: BaseException | None) -> None:
    for group in groups:
        if error is None and group.on_commit is not None:
            group.on_commit()
        if group.done is not None and not group.done.done():
            if error is None:
                group.done.set_result(None)
            else:
                group.done.set_exception(BusError(f"the embedded bus could not write: {error}"))


def _lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise BusError(
            f"the embedded bus in {path.parent} is in use by another process (pid {holder}); "
            "stop it, or give this one another data dir (--data-dir) or RabbitMQ (--amqp)"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _connect(path: Path, synchronous: Synchronous) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    for statement in SCHEMA:
        conn.execute(statement)
    return conn


def _read(conn: sqlite3.Connection) -> Contents:
    return Contents(
        exchanges=conn.execute("SELECT name, type FROM exchanges").fetchall(),
        queues=conn.execute("SELECT name, spec FROM queues").fetchall(),
        messages=conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages ORDER BY id").fetchall(),  # noqa: S608 - a constant
        claims=conn.execute(
            "SELECT key, holder, keep, last_used FROM claims ORDER BY last_used"
        ).fetchall(),
    )


# The statements the bus writes -----------------------------------------------------------------


def put_exchange(name: str, kind: str) -> Statement:
    return "INSERT OR REPLACE INTO exchanges (name, type) VALUES (?, ?)", (name, kind)


def put_queue(name: str, spec: bytes) -> Statement:
    return "INSERT OR REPLACE INTO queues (name, spec) VALUES (?, ?)", (name, spec)


def put_message(row: tuple[Any, ...]) -> Statement:
    placeholders = ", ".join("?" * len(row))
    return f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ({placeholders})", row  # noqa: S608


def count_delivery(message_row: int, deliveries: int) -> Statement:
    return "UPDATE messages SET deliveries = ? WHERE id = ?", (deliveries, message_row)


def drop_message(message_row: int) -> Statement:
    return "DELETE FROM messages WHERE id = ?", (message_row,)


def drop_stream_until(queue_name: str, offset: int) -> Statement:
    return (
        "DELETE FROM messages WHERE queue = ? AND stream_offset IS NOT NULL AND stream_offset <= ?",
        (queue_name, offset),
    )


def put_claim(key: str, holder: str, keep: float, last_used: float) -> Statement:
    return (
        "INSERT OR REPLACE INTO claims (key, holder, keep, last_used) VALUES (?, ?, ?, ?)",
        (key, holder, keep, last_used),
    )


def drop_claim(key: str) -> Statement:
    return "DELETE FROM claims WHERE key = ?", (key,)
