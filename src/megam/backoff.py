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
    _failures: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.first <= 0 or self.cap < self.first or self.factor < 1:
            raise ValueError("a backoff needs 0 < first <= cap and factor >= 1")

    def after(self, failures: int) -> float:
        """The delay (before jitter) after ``failures`` failures in a row, 0 giving ``first``: for a
        loop that keeps its count elsewhere (the gateway's outbox keeps it in the store)."""
        try:
            return min(self.cap, self.first * self.factor ** max(0, failures))
        except OverflowError:
            return self.cap

    @property
    def upcoming(self) -> float:
        """The most the next :meth:`wait` will sleep (before jitter)."""
        return self.after(self._failures)

    def delay(self) -> float:
        """The next delay; each call doubles (by ``factor``) the following one, up to ``cap``."""
        current = self.upcoming
        self._failures += 1
        return current / 2 + self.uniform() * current / 2 if self.jitter else current

    async def wait(self) -> float:
        delay = self.delay()
        await asyncio.sleep(delay)
        return delay

    def reset(self) -> None:
        self._failures = 0
