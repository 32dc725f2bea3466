"""The bus interface every Megam service is written against.

Semantics both adapters guarantee (``tests/test_bus_contract.py`` checks each):

* ``publish`` returns only once the broker has taken responsibility for the message (publisher
  confirm); an unroutable message raises :class:`PublishError` instead of vanishing.
* A consumer sees at most ``prefetch`` unacknowledged deliveries at once and handles them
  concurrently. A delivery is redelivered (``redelivered=True``) if it is rejected with
  ``requeue=True`` or if its consumer goes away before acknowledging it.
* A delivery rejected with ``requeue=False``, or delivered more than the queue's delivery limit,
  is dead-lettered through ``megam.dead``.
* A handler that raises gets its delivery requeued, so the delivery limit bounds a poison loop.
* A handler runs to its end even if its consumer's connection is lost meanwhile; the broker has
  then requeued its delivery, and settling it raises :class:`BusError`.
* ``ack(confirmed=True)`` returns only once the broker has processed the ack: the delivery is
  never redelivered after that, even if the consumer dies at once (herk's ack-on-accept).
* A stream queue keeps its messages (up to its max age) for every reader: ``follow_stream``
  reads it from an offset and then follows it; acks only pace the reader.
* ``claim_once`` is a durable compare-and-set: of every caller on every connection, the first to
  claim a key gets it, and everyone after learns who did, even once that caller is gone.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from megam.topology import Exchange, Queue


class BusError(Exception):
    """The bus could not do what was asked (broker unreachable, channel closed …)."""


class PublishError(BusError):
    """The broker refused or could not route a message."""


class Delivery(abc.ABC):
    body: bytes
    routing_key: str
    exchange: str
    headers: dict[str, Any]
    message_id: str | None
    correlation_id: str | None
    redelivered: bool

    @abc.abstractmethod
    async def ack(self, *, confirmed: bool = False) -> None:
        """Acknowledge. With ``confirmed``, return only once the broker has processed the ack, or
        raise :class:`BusError` if that cannot be known (the ack may or may not have taken effect).
        """

    @abc.abstractmethod
    async def reject(self, *, requeue: bool) -> None: ...

    @property
    @abc.abstractmethod
    def settled(self) -> bool:
        """True once acked or rejected."""


Handler = Callable[[Delivery], Awaitable[None]]


class Subscription(abc.ABC):
    @abc.abstractmethod
    async def cancel(self) -> None:
        """Stop receiving; unacknowledged deliveries go back to the queue."""

    async def stop_receiving(self) -> None:
        """Stop new deliveries but keep the ones already received ours to settle.

        For draining: in-flight work can still be acked; ``cancel`` later returns what is left.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot stop receiving")


class Bus(abc.ABC):
    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @property
    @abc.abstractmethod
    def connected(self) -> bool: ...

    @abc.abstractmethod
    async def declare(self, exchanges: Iterable[Exchange], queues: Iterable[Queue]) -> None: ...

    @abc.abstractmethod
    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None = None,
        correlation_id: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> None:
        """Publish persistently and wait for the broker's confirm."""

    @abc.abstractmethod
    async def consume(self, queue: str, handler: Handler, *, prefetch: int) -> Subscription: ...

    @abc.abstractmethod
    async def consume_temporary(
        self, bindings: Iterable[tuple[str, str]], handler: Handler, *, prefetch: int = 100
    ) -> Subscription:
        """Consume from a private queue that exists only as long as this subscription."""

    @abc.abstractmethod
    async def queue_depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (not counting unacknowledged ones)."""

    @abc.abstractmethod
    async def claim_once(self, key: str, holder: str, keep_seconds: float) -> str | None:
        """Claim ``key`` for ``holder`` unless it is claimed already.

        None: the claim is ``holder``'s, made now or by an earlier call with the same holder (so a
        call whose answer was lost can be repeated: give each claimant a holder of its own).
        Otherwise the holder that claimed ``key`` first. Concurrent callers on any connections
        get one answer: exactly one of them wins. The claim outlives its claimant's connection; it
        is forgotten once nobody has claimed ``key`` for ``keep_seconds``. Raises
        :class:`BusError` when the answer cannot be known (the claim may or may not have been
        made): repeat it with the same holder.
        """

    async def follow_stream(
        self, queue: str, handler: Handler, *, offset: str | int = "first", prefetch: int = 100
    ) -> Subscription:
        """Read the stream queue ``queue`` from ``offset`` (``"first"``, ``"next"`` or a number),
        then follow it. Each delivery's ``headers["x-stream-offset"]`` is its position."""
        raise NotImplementedError(f"{type(self).__name__} cannot follow streams")
