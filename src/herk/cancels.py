"""Durable cancels: each herk node reads the ``herk.cancels`` stream from the start, then follows.

Producers (gateway, CLI) publish ``ControlCommand(command="cancel")`` to ``megam.control`` with
key ``control.all``; the broker routes it into the stream as well as to live nodes. The stream
keeps it for a week, so a node started later, or restarted, still knows that the job must not
start. A node starts taking requests only once it has caught up: it publishes a marker into the
stream and waits to read it back, so every cancel published before the marker has been seen.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from herk import metrics
from megam import log, topology, wire
from megam.bus import Bus, BusError, Delivery, Subscription

logger = log.get("herk.cancels")

CATCH_UP_SECONDS = 60.0

OnCancel = Callable[[str, str], object]
"""``on_cancel(job_id, requested_by)``."""


class CancelFeed:
    def __init__(self, bus: Bus, herk: str, on_cancel: OnCancel) -> None:
        self._bus = bus
        self._herk = herk
        self._on_cancel = on_cancel
        self._marker = f"{herk}.{uuid.uuid4().hex}"
        self._caught_up = asyncio.Event()
        self._subscription: Subscription | None = None
        self.seen = 0

    async def start(self) -> None:
        """Follow the stream from its first message; return once caught up with it."""
        self._subscription = await self._bus.follow_stream(
            topology.HERK_CANCELS.name, self._receive, offset="first", prefetch=500
        )
        marker = wire.ControlCommand(
            command="ping", requested_by=f"{self._herk} catching up", at=wire.now()
        )
        await self._bus.publish(
            topology.CONTROL.name,
            topology.CANCELS_MARK_KEY,
            wire.encode(marker),
            message_id=self._marker,
        )
        try:
            await asyncio.wait_for(self._caught_up.wait(), CATCH_UP_SECONDS)
        except TimeoutError:
            raise BusError(
                f"could not read {topology.HERK_CANCELS.name} to its end "
                f"within {CATCH_UP_SECONDS:g} s"
            ) from None
        logger.info("cancels.caught_up", cancels=self.seen)

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.cancel()

    async def _receive(self, delivery: Delivery) -> None:
        await delivery.ack()  # a stream keeps its messages: the ack only paces the reader
        if delivery.message_id == self._marker:
            self._caught_up.set()
            return
        try:
            command = wire.decode(delivery.body, wire.ControlCommand)
        except wire.WireError as exc:
            logger.warning("cancels.unreadable", reason=exc.reason)
            return
        if command.command == "cancel" and command.job_id:
            self.seen += 1
            metrics.CANCELS_SEEN.inc()
            self._on_cancel(command.job_id, command.requested_by)
