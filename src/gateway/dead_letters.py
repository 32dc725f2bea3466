"""Operators' view of ``herk.requests.dead``: list, re-queue or discard dead-lettered jobs.

Each call opens a short-lived consumer with manual acks, takes up to ``limit`` messages (as many
as were ready when it started), acts on the selected ones (re-queue: publish the original body
back to ``megam.requests`` with its ``job.<type>`` key, then ack; discard: ack) and closes the
consumer, which hands every message it did not settle back to the queue untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
from collections.abc import AsyncIterator, Collection
from typing import Any, Final

import orjson

from megam import topology, wire
from megam.bus import Bus, BusError, Delivery

COLLECT_SECONDS: Final = 2.0
"""How long to wait for the messages the queue said it had (another reader may hold some)."""
SETTLE_SECONDS: Final = 0.2
"""How long to wait for more than it said: a quorum queue counts a message handed back by the
previous reader only a moment after that reader closed."""


@dataclasses.dataclass(slots=True)
class DeadLetter:
    key: str
    """The job id when the body names one, else the message id, else ``body-`` and a hash of the
    body: stable across listings, so an operator can name what they saw."""
    delivery: Delivery
    request: wire.JobRequest | None
    """The body as a job request, None when it is not one (it can then only be discarded)."""

    def view(self) -> dict[str, Any]:
        headers = self.delivery.headers or {}
        reason = headers.get(wire.REASON_HEADER, "")
        out: dict[str, Any] = {
            "id": self.key,
            "reason": reason.decode() if isinstance(reason, bytes) else str(reason),
            "bytes": len(self.delivery.body),
            "requeueable": self.request is not None,
        }
        if self.request is not None:
            out |= {
                "job_id": self.request.job_id,
                "type": self.request.type,
                "node": self.request.node,
                "attempt": self.request.attempt,
            }
        return out


@contextlib.asynccontextmanager
async def taken(bus: Bus, limit: int) -> AsyncIterator[list[DeadLetter]]:
    """Up to ``limit`` dead letters, held unacknowledged until the block ends."""
    queue = topology.HERK_REQUESTS_DEAD.name
    expected = min(await bus.queue_depth(queue), limit)
    received: list[Delivery] = []
    arrived = asyncio.Event()

    async def keep(delivery: Delivery) -> None:
        if len(received) >= limit:
            await delivery.reject(requeue=True)  # prefetch overshoot: not ours to show
            return
        received.append(delivery)
        arrived.set()

    subscription = await bus.consume(queue, keep, prefetch=limit)
    try:
        await _collect(received, arrived, expected, limit)
        yield [_letter(delivery) for delivery in received]
    finally:
        with contextlib.suppress(BusError):
            await subscription.cancel()


async def _collect(
    received: list[Delivery], arrived: asyncio.Event, expected: int, limit: int
) -> None:
    """Wait for the ``expected`` messages, then until none came for a moment (or ``limit``)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(COLLECT_SECONDS):
            while len(received) < expected:
                arrived.clear()
                await arrived.wait()
    while len(received) < limit:
        arrived.clear()
        try:
            async with asyncio.timeout(SETTLE_SECONDS):
                await arrived.wait()
        except TimeoutError:
            return


async def requeue(bus: Bus, letter: DeadLetter, requested_by: str) -> None:
    if letter.request is None:
        raise ValueError(f"{letter.key} is not a job request; it can only be discarded")
    await bus.publish(
        topology.REQUESTS.name,
        topology.request_key(letter.request.type),
        letter.delivery.body,
        message_id=letter.request.job_id,
        correlation_id=letter.request.correlation_id or None,
        headers={wire.REQUEUED_HEADER: requested_by},
    )
    await letter.delivery.ack()


async def discard(letter: DeadLetter) -> None:
    await letter.delivery.ack()


def select(letters: list[DeadLetter], keys: Collection[str] | None) -> list[DeadLetter]:
    """The letters named by ``keys``; all of them when ``keys`` is None."""
    if keys is None:
        return letters
    wanted = set(keys)
    return [letter for letter in letters if letter.key in wanted]


def body_key(body: bytes) -> str:
    return "body-" + hashlib.sha256(body).hexdigest()[:16]


def _letter(delivery: Delivery) -> DeadLetter:
    try:
        request: wire.JobRequest | None = wire.decode(delivery.body, wire.JobRequest)
    except wire.WireError:
        request = None
    return DeadLetter(
        key=request.job_id if request else _loose_job_id(delivery) or body_key(delivery.body),
        delivery=delivery,
        request=request,
    )


def _loose_job_id(delivery: Delivery) -> str | None:
    """A job id from a body that is not a valid request, to name it in the listing."""
    try:
        raw = orjson.loads(delivery.body)
    except orjson.JSONDecodeError:
        return delivery.message_id
    job_id = raw.get("job_id") if isinstance(raw, dict) else None
    return job_id if isinstance(job_id, str) and len(job_id) <= 64 else delivery.message_id
