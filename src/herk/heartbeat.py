"""A herk node's heartbeat: every ``interval`` seconds on ``heartbeat.<herk>``, and at once when
asked (after an acceptance, a drain, a scale, a ping).

A beat later than its interval tells nothing, so a send never waits longer than that for the bus,
and a node stopping while the broker is away skips it instead of holding up its stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from herk.events import EventPublisher
from megam import log, wire
from megam.bus import Bus, BusError

logger = log.get("herk.heartbeat")


class Heartbeats:
    def __init__(
        self,
        bus: Bus,
        events: EventPublisher,
        interval: float,
        snapshot: Callable[[], wire.Heartbeat],
    ) -> None:
        self._bus = bus
        self._events = events
        self._interval = interval
        self._snapshot = snapshot
        self._task: asyncio.Task[None] | None = None
        self.stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._beat())

    async def stop(self) -> None:
        """Stop beating on schedule; :meth:`send` still sends the last word."""
        self.stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _beat(self) -> None:
        while True:
            await self.send()
            await asyncio.sleep(self._interval)

    async def send(self) -> None:
        if self.stopping and not self._bus.connected:
            logger.warning("heartbeat.skipped", why="stopping while the broker is unreachable")
            return
        try:
            async with asyncio.timeout(self._interval):
                await self._events.heartbeat(self._snapshot())
        except (BusError, TimeoutError) as exc:
            logger.warning("heartbeat.failed", error=str(exc) or "not sent within its interval")
