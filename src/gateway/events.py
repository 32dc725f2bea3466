"""Applying herk's events (``gateway.events``) to the store, then waking live tails.

Each delivery is acknowledged only after its effect is committed. The events of one job are
applied in delivery order (herk publishes them in order), so a job's last lines are stored before
the status that ends it. Applying is idempotent: the store ignores a line it has, and a status
event that is not newer than what it has. A message that cannot be parsed, or that names an
account that does not own the job, is published to ``megam.dead`` with the reason in a header,
then acknowledged: the consumer never stops on one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec

from gateway import metrics
from gateway.ordering import KeyedLocks
from gateway.store import Store, StoreError
from gateway.store.records import EventOutcome
from gateway.tail import Notifier
from megam import log, topology, wire
from megam.backoff import Backoff
from megam.bus import Bus, Delivery, Subscription

logger = log.get("gateway.events")

Applier = Callable[[Any], Awaitable[EventOutcome]]
MAX_REASON: Final = 1000


class EventConsumer:
    def __init__(self, store: Store, bus: Bus, notifier: Notifier) -> None:
        self._store = store
        self._bus = bus
        self._notifier = notifier
        self._stopping = False
        self._in_order = KeyedLocks()
        self._appliers: dict[str, tuple[type[msgspec.Struct], Applier]] = {
            "status": (wire.StatusEvent, store.apply_status),
            "log": (wire.LogEvent, store.add_log_lines),
            "metric": (wire.MetricEvent, store.add_metrics),
            "heartbeat": (wire.Heartbeat, self._heartbeat),
        }

    async def start(self, prefetch: int) -> Subscription:
        return await self._bus.consume(topology.GATEWAY_EVENTS.name, self.handle, prefetch=prefetch)

    def stop(self) -> None:
        """Shutting down: deliveries still waiting for the store go back to the queue."""
        self._stopping = True

    async def handle(self, delivery: Delivery) -> None:
        kind = delivery.routing_key.split(".", 1)[0]
        applier = self._appliers.get(kind)
        if applier is None:
            reason = f"routing key {delivery.routing_key!r} is not an event this gateway knows"
            await self._dead_letter(delivery, "unknown", reason)
            return
        struct, apply = applier
        try:
            event = wire.decode(delivery.body, struct)
        except wire.WireError as exc:
            await self._dead_letter(delivery, kind, exc.reason)
            return
        job_id = getattr(event, "job_id", None)
        if job_id is None:
            outcome = await self._apply_until_stored(apply, event)
        else:
            async with self._in_order.hold(job_id):
                outcome = await self._apply_until_stored(apply, event)
        if outcome.mismatch:
            await self._dead_letter(delivery, kind, outcome.why)
            return
        if outcome.applied and outcome.node_id is not None and kind in ("status", "log"):
            self._notifier.notify(outcome.node_id, status=kind == "status")
        if kind == "log":
            metrics.LOG_LINES.inc(outcome.stored)
        metrics.EVENTS.labels(kind=kind, outcome="applied" if outcome.applied else "ignored").inc()
        if not outcome.applied:
            logger.debug("event.ignored", kind=kind, why=outcome.why)
        await delivery.ack()

    async def _apply_until_stored(self, apply: Applier, event: Any) -> EventOutcome:
        # A store outage must not burn the queue's delivery limit and dead-letter good events:
        # hold the delivery (prefetch bounds how many) and retry until the store answers.
        backoff = Backoff(first=0.1, cap=5.0)
        while True:
            try:
                return await apply(event)
            except StoreError as exc:
                if self._stopping:
                    raise
                logger.warning(
                    "event.store_unavailable", error=str(exc), retry_in=backoff.upcoming
                )
                await backoff.wait()

    async def _heartbeat(self, beat: wire.Heartbeat) -> EventOutcome:
        await self._store.record_heartbeat(beat)
        return EventOutcome(applied=True)

    async def _dead_letter(self, delivery: Delivery, kind: str, reason: str) -> None:
        reason = reason[:MAX_REASON]
        logger.warning(
            "event.dead_lettered", kind=kind, routing_key=delivery.routing_key, reason=reason
        )
        await self._bus.publish(
            topology.DEAD.name,
            topology.GATEWAY_EVENTS.name,
            delivery.body,
            message_id=delivery.message_id,
            correlation_id=delivery.correlation_id,
            headers={wire.REASON_HEADER: reason, wire.ROUTING_KEY_HEADER: delivery.routing_key},
        )
        metrics.EVENTS.labels(kind=kind, outcome="dead_lettered").inc()
        await delivery.ack()
