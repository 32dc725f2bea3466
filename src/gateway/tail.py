"""Live tails: wake followers of a node when its lines or statuses change, then read the store.

The store is the only source of lines; the notifier carries no data, it only says "look again".
So a follower that reads "lines after my cursor" after each wake-up can never skip or repeat a
line, whatever the timing — the property the original's Redis/AMQP relay lacked.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal, TypeVar, cast

from gateway.store import Store
from gateway.store.records import Job, LogLine, Node

T = TypeVar("T")


class Notifier:
    def __init__(self) -> None:
        self._wakeups: weakref.WeakValueDictionary[str, asyncio.Event] = (
            weakref.WeakValueDictionary()
        )
        self._status_versions: collections.Counter[str] = collections.Counter()
        self._versions: collections.Counter[str] = collections.Counter()
        self._reads: dict[tuple[Any, ...], asyncio.Future[Any]] = {}
        self.closed = asyncio.Event()

    def watch(self, node_id: str) -> asyncio.Event:
        """An event set by the next :meth:`notify` for the node. Take it *before* reading."""
        wakeup = self._wakeups.get(node_id)
        if wakeup is None:
            wakeup = self._wakeups[node_id] = asyncio.Event()
        return wakeup

    def notify(self, node_id: str, *, status: bool = False) -> None:
        self._versions[node_id] += 1
        if status:
            self._status_versions[node_id] += 1
        wakeup = self._wakeups.pop(node_id, None)
        if wakeup is not None:
            wakeup.set()

    def status_version(self, node_id: str) -> int:
        return self._status_versions[node_id]

    async def shared_read(
        self, node_id: str, key: tuple[Any, ...], read: Callable[[], Awaitable[T]]
    ) -> T:
        """``read()``, or the result of an identical read of the node that started after its
        latest notify (so it sees everything this caller was woken for). A hundred followers
        of one chatty job then cost one store query per wake-up, not a hundred."""
        full_key = (node_id, self._versions[node_id], *key)
        pending = self._reads.get(full_key)
        if pending is None:
            pending = asyncio.ensure_future(read())
            self._reads[full_key] = pending
            pending.add_done_callback(lambda _: self._reads.pop(full_key, None))
        # shielded: one follower hanging up must not cancel the read the others wait for
        return cast(T, await asyncio.shield(pending))

    def close(self) -> None:
        """Shutting down: every follower ends after its current step."""
        self.closed.set()
        for wakeup in list(self._wakeups.values()):
            wakeup.set()


@dataclasses.dataclass(frozen=True, slots=True)
class TailItem:
    kind: Literal["line", "status", "keepalive"]
    cursor: int
    line: LogLine | None = None
    status: dict[str, Any] | None = None


def status_snapshot(node: Node, jobs: list[Job]) -> dict[str, Any]:
    return {
        "node_name": node.name,
        "status": node.status,
        "jobs": [
            {
                "job_id": job.id,
                "req_type": job.req_type,
                "state": job.state,
                "reason": job.reason,
                "exit_code": job.exit_code,
            }
            for job in jobs
        ],
    }


@dataclasses.dataclass(slots=True)
class Follow:
    """One follower of one node: replay, then follow, from a cursor."""

    store: Store
    notifier: Notifier
    node: Node
    job_id: str | None
    keepalive: float
    batch: int = 500

    async def batches(self, *, after: int | None, tail: int) -> AsyncIterator[list[TailItem]]:
        """What to send, in order, in batches: the replay, then whatever each wake-up finds."""
        if after is None:
            # tail=0 still reads the newest line: its id is where following starts
            replay = await self._lines(tail=max(tail, 1))
            cursor = replay[-1].id if replay else 0
            if tail == 0:
                replay = []
        else:
            replay, cursor = [], after
        if replay:
            yield [TailItem("line", line.id, line=line) for line in replay]
        status_seen = -1
        while not self.notifier.closed.is_set():
            wakeup = self.notifier.watch(self.node.id)
            version = self.notifier.status_version(self.node.id)
            lines = await self._lines(after=cursor)
            batch = [TailItem("line", line.id, line=line) for line in lines]
            cursor = lines[-1].id if lines else cursor
            # Lines first: events of a job are applied in order, so every line written before
            # a job ended is sent before the status that says it ended.
            if version != status_seen:
                status_seen = version
                batch.append(TailItem("status", cursor, status=await self._status()))
            if batch:
                yield batch
            if len(lines) == self.batch:
                continue  # more are waiting; read on before sleeping
            try:
                await asyncio.wait_for(wakeup.wait(), self.keepalive)
            except TimeoutError:
                yield [TailItem("keepalive", cursor)]

    async def _lines(self, *, after: int | None = None, tail: int | None = None) -> list[LogLine]:
        limit = self.batch if after is not None else max(tail or 0, 1)

        def read() -> Awaitable[list[LogLine]]:
            return self.store.log_lines(
                self.node.account_id,
                self.node.id,
                after=after,
                tail=tail,
                job_id=self.job_id,
                limit=limit,
            )

        key = ("lines", self.node.account_id, self.job_id, after, tail, limit)
        return await self.notifier.shared_read(self.node.id, key, read)

    async def _status(self) -> dict[str, Any]:
        node = await self.store.node_by_id(self.node.account_id, self.node.id) or self.node
        jobs = await self.store.jobs(self.node.account_id, node_id=self.node.id)
        return status_snapshot(node, jobs)
