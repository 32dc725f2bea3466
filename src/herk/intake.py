"""The node's consumer of ``herk.requests``, whose prefetch follows the requests it may hold.

The broker counts a consumer's unacknowledged deliveries against its prefetch, and a prefetch
cannot change under a live consumer: to hold more or fewer requests, the intake consumes again
on a fresh channel and retires the old consumer, whose channel stays open until the requests it
delivered are settled (closing it would hand them back), and at least a few seconds, for the
deliveries that crossed its basic.cancel (aiormq drops those that arrive after the cancel-ok;
the broker requeues them when the channel closes). Until then, what the retired consumers still
hold counts against the new prefetch.

How many the node may hold is :func:`capacity`: it shrinks when
an accepted job (whose request no longer counts as unacknowledged) or a long job runs. When a
retired consumer has drained, the room it leaves is taken up again once the live consumer is
idle; meanwhile the node holds less than it may, never more.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Coroutine
from typing import Any

from megam import log, topology
from megam.bus import Bus, BusError, Delivery, Handler, Subscription

logger = log.get("herk.intake")

RETIRE_GRACE = 5.0
"""A retired consumer's channel stays open at least this long: deliveries that crossed its
basic.cancel are still on their way into handlers, and closing would cut them off."""
MAX_PREFETCH = 30
"""RabbitMQ's quorum-queue client holds a channel's settles back once 32 commands are in flight;
a prefetch below that keeps every ack (and so ``ack(confirmed=True)``) sent at once."""


def capacity(workers: int, accepted_running: int, long_running: int) -> int:
    """How many requests a node may hold: one per worker not taken by an accepted job (whose
    request no longer counts as prefetched), and as many again while every job there is short,
    so that a worker finds its next request waiting instead of idling through the round trip
    that settles the last one (docs/herk.md, "Pipelining without hoarding")."""
    free = max(0, workers - accepted_running)
    return free * 2 if long_running == 0 else free


@dataclasses.dataclass(eq=False)
class _Consumer:
    prefetch: int
    subscription: Subscription | None = None
    deliveries: set[Delivery] = dataclasses.field(default_factory=set)
    """Deliveries whose handling has not ended (settled or not)."""
    retired: bool = False
    closable_at: float = 0.0

    @property
    def unsettled(self) -> int:
        return sum(1 for delivery in self.deliveries if not delivery.settled)


class Intake:
    def __init__(self, bus: Bus, handler: Handler, capacity: Callable[[], int]) -> None:
        self._bus = bus
        self._handler = handler
        self._wanted = capacity
        """How many requests the node may hold now (it changes as jobs start and end)."""
        self._adjusting: asyncio.Task[None] | None = None
        self._capacity = 0
        self._current: _Consumer | None = None
        self._retired: list[_Consumer] = []
        self._stopped = False
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def prefetch(self) -> int:
        """The prefetch of the live consumer (0: not receiving)."""
        return self._current.prefetch if self._current is not None else 0

    def adjust(self) -> None:
        """The node's capacity moved (an accepted or long job started or ended): re-size to it,
        one re-size at a time."""
        if self._adjusting is None or self._adjusting.done():
            self._adjusting = asyncio.create_task(self._adjust())

    async def _adjust(self) -> None:
        try:
            while await self.resize(self._wanted()):
                pass  # resized: the capacity may have moved again meanwhile
        except BusError as exc:
            logger.warning("intake.resize_failed", error=str(exc))

    async def resize(self, capacity: int) -> bool:
        """Hold at most ``capacity`` unacknowledged requests, counting those already held.
        False when the capacity did not change (or the intake stopped for good)."""
        async with self._lock:
            if self._stopped or capacity == self._capacity:
                return False
            self._capacity = capacity
            await self._consume_again()
            return True

    async def stop_receiving(self) -> None:
        """For good (drain): deliveries already received stay ours to settle."""
        async with self._lock:
            self._stopped = True
            await self._retire_current()

    async def close(self) -> None:
        """Cancel every consumer: what is still unacknowledged goes back to the queue."""
        async with self._lock:
            self._stopped = True
            consumers = [c for c in (self._current, *self._retired) if c is not None]
            self._current, self._retired = None, []
        for task in self._tasks:
            task.cancel()
        for consumer in consumers:
            await _cancel(consumer)

    def _room(self) -> int:
        held = sum(c.unsettled for c in (self._current, *self._retired) if c is not None)
        return max(0, min(self._capacity - held, MAX_PREFETCH))

    async def _consume_again(self) -> None:
        room = self._room()  # what the current consumer holds counts: it is retired next
        await self._retire_current()
        if room > 0:
            consumer = _Consumer(room)
            consumer.subscription = await self._bus.consume(
                topology.HERK_REQUESTS.name, self._tracking(consumer), prefetch=room
            )
            self._current = consumer

    async def _retire_current(self) -> None:
        consumer = self._current
        if consumer is None:
            return
        consumer.retired = True
        self._retired.append(consumer)
        assert consumer.subscription is not None
        await consumer.subscription.stop_receiving()
        self._current = None  # only now: it received until its basic.cancel was answered
        consumer.closable_at = asyncio.get_running_loop().time() + RETIRE_GRACE
        self._spawn(self._close_when_due(consumer))

    async def _close_when_due(self, consumer: _Consumer) -> None:
        await asyncio.sleep(RETIRE_GRACE)
        await self._close_if_drained(consumer)

    def _tracking(self, consumer: _Consumer) -> Handler:
        async def handle(delivery: Delivery) -> None:
            consumer.deliveries.add(delivery)
            try:
                await self._handler(delivery)
            finally:
                consumer.deliveries.discard(delivery)
                if consumer.retired:
                    await self._close_if_drained(consumer)

        return handle

    async def _close_if_drained(self, consumer: _Consumer) -> None:
        # Only a channel that holds nothing unsettled may close (closing returns what it holds).
        due = asyncio.get_running_loop().time() >= consumer.closable_at
        if due and consumer.unsettled == 0 and consumer in self._retired:
            self._retired.remove(consumer)
            await _cancel(consumer)
            if not self._stopped:
                self._spawn(self._widen())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _widen(self) -> None:
        """A retired consumer drained: what it held is room again. Taken up only while the live
        consumer holds nothing, else each re-consume would retire a busy consumer in turn."""
        async with self._lock:
            idle = self._current is None or self._current.unsettled == 0
            if not self._stopped and idle and self._room() > self.prefetch:
                await self._consume_again()


async def _cancel(consumer: _Consumer) -> None:
    try:
        if consumer.subscription is not None:
            await consumer.subscription.cancel()
    except Exception as exc:  # a broker already gone, say: the rest still closes
        logger.warning("intake.close_failed", error=repr(exc))
