"""Repeat a broker operation until it is done: a publish until it is confirmed, a claim until the
broker answers (both safe to repeat: the request stays unacknowledged meanwhile, and a claim is
asked for again as the same holder).

Only a node that is shutting down gives up, so that its stop is not held hostage by a broker
that is away; the operation's error then reaches the caller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from megam import log
from megam.backoff import Backoff
from megam.bus import BusError

logger = log.get("herk.reliably")

T = TypeVar("T")
FIRST_DELAY = 0.5
MAX_DELAY = 10.0


class Reliably:
    def __init__(self, *, first: float = FIRST_DELAY, cap: float = MAX_DELAY) -> None:
        self._first = first
        self._cap = cap
        self.giving_up = False
        """Set when the node shuts down: a failure is then raised instead of retried."""

    async def __call__(self, operation: Callable[[], Awaitable[T]]) -> T:
        backoff = Backoff(self._first, self._cap)
        while True:
            try:
                return await operation()
            except BusError as exc:
                if self.giving_up:
                    raise
                logger.warning("publish.retrying", error=str(exc), delay=backoff.upcoming)
                await backoff.wait()
