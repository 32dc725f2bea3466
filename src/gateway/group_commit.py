"""Group commit: concurrent requests' writes of one kind share one store transaction.

The SQLite store has one writer thread; under load, each launch waiting for its own transaction
is what limits launches per second. A request hands its item over and waits; whoever arrives
while a transaction runs goes into the next one. Each item gets its own result (or error).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

I = TypeVar("I")  # noqa: E741 - the item, as in Generic[I, R]
R = TypeVar("R")


class GroupCommit(Generic[I, R]):
    def __init__(self, write: Callable[[list[I]], Awaitable[Sequence[R]]]) -> None:
        self._write = write
        self._waiting: list[tuple[I, asyncio.Future[R]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def submit(self, item: I) -> R:
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._writing is None:
            self._writing = asyncio.create_task(self._write_all())
        return await done

    async def _write_all(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    results = await self._write([item for item, _ in batch])
                except Exception as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    for (_, done), result in zip(batch, results, strict=True):
                        if not done.done():
                            done.set_result(result)
        finally:
            self._writing = None
