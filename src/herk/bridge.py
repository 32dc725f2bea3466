"""Crossing between worker threads and the event loop, per dependencies.md §3.

Loop → actor is ``tell()`` only (the master never awaits a pykka future). Actor thread → loop is
this bridge: :meth:`LoopBridge.run` for work whose result or back-pressure the thread needs (a
publish and its confirm), :meth:`LoopBridge.notify` for fire-and-forget calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopBridge:
    def __init__(self, loop: asyncio.AbstractEventLoop, *, timeout: float = 60.0) -> None:
        self._loop = loop
        self._timeout = timeout

    def run(self, coro: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result in this (non-loop) thread."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(self._timeout if timeout is None else timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError("the event loop did not finish in time") from None

    def notify(self, callback: Callable[..., object], *args: object) -> None:
        """Schedule ``callback(*args)`` on the loop; returns at once."""
        self._loop.call_soon_threadsafe(callback, *args)

    def resolver(self, future: asyncio.Future[T]) -> Callable[[T], None]:
        """A thread-safe function that completes ``future`` (once) with its argument."""

        def settle(value: T) -> None:
            if not future.done():
                future.set_result(value)

        return lambda value: self.notify(settle, value)
