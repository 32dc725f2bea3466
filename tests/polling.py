"""The one "poll until" of the test suites: for state that changes with no event to wait on."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def poll_until(
    check: Callable[[], T | Awaitable[T]],
    what: str = "the condition",
    *,
    timeout: float = 10.0,
    every: float = 0.02,
) -> T:
    """Call ``check`` (plain or async) until it returns something truthy, and return that; after
    ``timeout`` seconds fail the test, saying what it waited for."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(every)
