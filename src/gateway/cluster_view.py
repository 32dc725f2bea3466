"""What the gateway knows of the cluster right now: herk nodes from their heartbeats, the depth of
``herk.requests`` and ``herk.requests.dead``, and whether the broker answers.

Read by every job view (to say why a job waits) and by the operator routes, so it is cached for a
moment: a page of jobs costs one snapshot, not one broker round trip per job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Final

from gateway.options import GatewayOptions
from gateway.store import Store
from gateway.store.records import HerkNode
from megam import log, topology
from megam.bus import Bus

logger = log.get("gateway.cluster")

DEFAULT_BEAT_SECONDS: Final = 5.0
"""Assumed heartbeat interval of a herk node that does not announce its own."""


@dataclasses.dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    herks: tuple[HerkNode, ...]
    queue_depth: int | None
    """Jobs ready in ``herk.requests``; None when the broker did not answer."""
    dead_letters: int | None
    taken_at: float
    options: GatewayOptions

    def silence_limit(self, herk: HerkNode) -> float:
        """How long ``herk`` may stay silent before it counts as stopped."""
        interval = herk.interval or DEFAULT_BEAT_SECONDS
        return max(
            self.options.herk_silence_beats * interval, self.options.herk_silence_min_seconds
        )

    def unreachable_for(self, herk: HerkNode) -> float | None:
        """How long ``herk`` has been silent once it missed ``herk_silence_beats`` of its
        heartbeats, else None: unreachable, not yet presumed gone (:meth:`silence_limit`)."""
        silent = self.taken_at - herk.last_seen
        missed = self.options.herk_silence_beats * (herk.interval or DEFAULT_BEAT_SECONDS)
        return silent if silent > missed else None

    def is_alive(self, herk: HerkNode) -> bool:
        return self.taken_at - herk.last_seen <= self.silence_limit(herk)

    @property
    def alive(self) -> list[HerkNode]:
        return [herk for herk in self.herks if self.is_alive(herk)]

    def herk(self, name: str) -> HerkNode | None:
        return next((herk for herk in self.herks if herk.name == name), None)

    @property
    def broker_reachable(self) -> bool:
        return self.queue_depth is not None


class ClusterView:
    def __init__(
        self, store: Store, bus: Bus, options: GatewayOptions, max_age: float = 1.0
    ) -> None:
        self._store = store
        self._bus = bus
        self._options = options
        self._max_age = max_age
        self._cached: ClusterSnapshot | None = None
        self._refreshing: asyncio.Lock = asyncio.Lock()

    async def snapshot(self, *, fresh: bool = False) -> ClusterSnapshot:
        cached = self._cached
        if not fresh and cached is not None and time.time() - cached.taken_at < self._max_age:
            return cached
        async with self._refreshing:  # concurrent readers share one refresh
            cached = self._cached
            if not fresh and cached is not None and time.time() - cached.taken_at < self._max_age:
                return cached
            self._cached = await self._take()
            return self._cached

    async def _take(self) -> ClusterSnapshot:
        herks = await self._store.herk_nodes()
        return ClusterSnapshot(
            herks=tuple(herks),
            queue_depth=await self._depth(topology.HERK_REQUESTS.name),
            dead_letters=await self._depth(topology.HERK_REQUESTS_DEAD.name),
            taken_at=time.time(),
            options=self._options,
        )

    async def _depth(self, queue: str) -> int | None:
        if not self._bus.connected:
            return None
        try:
            async with asyncio.timeout(2.0):
                return await self._bus.queue_depth(queue)
        # any failure only means "unknown": a job view must never fail over a depth
        except Exception as exc:
            logger.debug("cluster.depth_unknown", queue=queue, error=str(exc))
            return None
