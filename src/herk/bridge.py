"""Crossing between worker threads and the event loop (docs/herk.md, "Modules").

Loop → actor is ``tell()`` only (the master never awaits a pykka future). Actor thread → loop is
fire-and-forget only, :meth:`LoopBridge.notify` and the :meth:`LoopBridge.resolver` of a future
built on it: a worker thread never waits for the loop, so it never waits for the broker either
(its log lines go into the event outbox, herk.outbox, which takes them at once from any thread).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class LoopBridge:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def notify(self, callback: Callable[..., object], *args: object) -> None:
        """Schedule ``callback(*args)`` on the loop; returns at once."""
        self._loop.call_soon_threadsafe(callback, *args)

    def resolver(self, future: asyncio.Future[T]) -> Callable[[T], None]:
        """A thread-safe function that completes ``future`` (once) with its argument."""

        def settle(value: T) -> None:
            if not future.done():
                future.set_result(value)

        return lambda value: self.notify(settle, value)
