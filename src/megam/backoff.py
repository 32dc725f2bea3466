"""One backoff for every retry loop in the project: exponential, capped, optionally jittered.

A loop that waits before trying again (a publish the broker did not confirm, a store that did
not answer, a live tail that lost its connection) keeps a :class:`Backoff` and calls
:meth:`Backoff.wait` after each failure and :meth:`Backoff.reset` after a success.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    first: float
    cap: float
    factor: float = 2.0
    jitter: bool = False  # "equal jitter": half the delay fixed, half random
    uniform: Callable[[], float] = random.random
    _next: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.first <= 0 or self.cap < self.first or self.factor < 1:
            raise ValueError("a backoff needs 0 < first <= cap and factor >= 1")
        self._next = self.first

    @property
    def upcoming(self) -> float:
        """The most the next :meth:`wait` will sleep (before jitter)."""
        return self._next

    def delay(self) -> float:
        """The next delay; each call doubles (by ``factor``) the following one, up to ``cap``."""
        current = self._next
        self._next = min(self.cap, current * self.factor)
        return current / 2 + self.uniform() * current / 2 if self.jitter else current

    async def wait(self) -> float:
        delay = self.delay()
        await asyncio.sleep(delay)
        return delay

    def reset(self) -> None:
        self._next = self.first
