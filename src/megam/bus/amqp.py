"""The RabbitMQ bus, on aio-pika's robust connection.

* One channel with publisher confirms for publishing (``on_return_raises`` so an unroutable
  message is an error, not a silent drop); a channel per subscription for its own prefetch.
* aio-pika replays nothing published during an outage, so ``publish`` waits for the robust
  connection to come back, up to ``publish_timeout``, and then raises :class:`BusError`.
* Callback consumers (not queue iterators: aio-pika #379), restored by the robust channel.
* ``ack(confirmed=True)``: basic.ack has no reply, but RabbitMQ's channel process handles a
  channel's methods one at a time in arrival order, and aiormq writes a connection's frames in
  call order. So a synchronous method sent on the same channel after the ack (basic.qos, same
  prefetch) answering proves that the ack was handled: the channel has settled the message with
  its queue. No answer within ``publish_timeout`` raises :class:`BusError`. (A quorum queue's
  client holds settles back only once 32 commands are in flight on the channel, which a prefetch
  below 32 rules out.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterable
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.exceptions import ChannelInvalidStateError, DeliveryError
from aio_pika.exceptions import PublishError as PikaPublishError

from megam import log
from megam.bus.base import Bus, BusError, Delivery, Handler, PublishError, Subscription
from megam.topology import DEAD, Exchange, Queue

logger = log.get("megam.bus.amqp")

_RETRYABLE = (
    ChannelInvalidStateError,
    aiormq.exceptions.AMQPConnectionError,
    ConnectionError,
    RuntimeError,
)


STREAM_SEGMENT_BYTES = 1_000_000
"""Streams expire whole segments: small ones let ``x-max-age`` apply to a trickle of messages."""
STREAM_MAX_BYTES = 200_000_000


def queue_arguments(spec: Queue) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if spec.stream_max_age:
        return {
            "x-queue-type": "stream",
            "x-max-age": spec.stream_max_age,
            "x-stream-max-segment-size-bytes": STREAM_SEGMENT_BYTES,
            "x-max-length-bytes": STREAM_MAX_BYTES,
        }
    if spec.quorum:
        args["x-queue-type"] = "quorum"
    if spec.dead_letter_to:
        args["x-dead-letter-exchange"] = DEAD.name
        args["x-dead-letter-routing-key"] = spec.dead_letter_to
    if spec.delivery_limit is not None:
        args["x-delivery-limit"] = spec.delivery_limit
    return args


class _AmqpDelivery(Delivery):
    def __init__(
        self, message: AbstractIncomingMessage, prefetch: int, confirm_timeout: float
    ) -> None:
        self._message = message
        self._prefetch = prefetch
        self._confirm_timeout = confirm_timeout
        self.body = message.body
        self.routing_key = message.routing_key or ""
        self.exchange = message.exchange or ""
        self.headers = dict(message.headers or {})
        self.message_id = message.message_id
        self.correlation_id = message.correlation_id
        self.redelivered = bool(message.redelivered)
        self._settled = False

    @property
    def settled(self) -> bool:
        return self._settled

    async def ack(self, *, confirmed: bool = False) -> None:
        try:
            await self._message.ack()
            if confirmed:
                # The proof (see the module docstring): a reply to a method sent after the ack on
                # the channel the message came from (a reconnected channel never held it).
                await self._message.channel.basic_qos(
                    prefetch_count=self._prefetch, timeout=self._confirm_timeout
                )
        except (TimeoutError, *_RETRYABLE, aiormq.exceptions.AMQPError) as exc:
            raise BusError(f"cannot {'confirm the ' if confirmed else ''}ack: {exc!r}") from exc
        finally:
            self._settled = True  # only now: whoever closes channels waits for the proof

    async def reject(self, *, requeue: bool) -> None:
        try:
            await self._message.reject(requeue=requeue)
        except (*_RETRYABLE, aiormq.exceptions.AMQPError) as exc:
            raise BusError(f"cannot reject: {exc!r}") from exc
        finally:
            self._settled = True


class _AmqpSubscription(Subscription):
    def __init__(
        self, channel: AbstractRobustChannel, queue: aio_pika.abc.AbstractQueue, tag: str
    ) -> None:
        self._channel = channel
        self._queue = queue
        self._tag = tag
        self._receiving = True

    async def stop_receiving(self) -> None:
        # basic.cancel only: the channel stays open, so deliveries already received can be acked.
        if self._receiving:
            self._receiving = False
            # With the channel down, only the local half matters and it is done at once:
            # RobustQueue.cancel forgets the consumer (so a reconnect does not restore it)
            # before it talks to the broker, which drops it with the dead connection anyway.
            wait = OFFLINE_TEARDOWN_TIMEOUT if self._channel.is_closed else TEARDOWN_TIMEOUT
            await _best_effort("basic.cancel", self._queue.cancel(self._tag), wait)

    async def cancel(self) -> None:
        try:
            await self.stop_receiving()
        finally:
            await _best_effort("channel.close", self._channel.close())


class AmqpBus(Bus):
    def __init__(self, url: str, *, publish_timeout: float = 30.0, heartbeat: int = 30) -> None:
        self._url = url
        self._publish_timeout = publish_timeout
        self._heartbeat = heartbeat
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self.reconnects = 0

    async def connect(self) -> None:
        try:
            self._connection = await aio_pika.connect_robust(
                self._url,
                heartbeat=self._heartbeat,
                reconnect_interval=1,
                client_properties={"connection_name": "megam"},
            )
        except (OSError, aiormq.exceptions.AMQPError) as exc:
            raise BusError(f"cannot reach RabbitMQ at {_redact(self._url)}: {exc}") from exc
        self._connection.reconnect_callbacks.add(self._on_reconnect)
        self._channel = await self._connection.channel(  # type: ignore[assignment]
            publisher_confirms=True, on_return_raises=True
        )

    def _on_reconnect(self, *_: object) -> None:
        self.reconnects += 1
        logger.warning("amqp.reconnected", reconnects=self.reconnects)

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await _best_effort("connection.close", connection.close())

    @property
    def connected(self) -> bool:
        return (
            self._connection is not None
            and not self._connection.is_closed
            and bool(self._channel is not None and not self._channel.is_closed)
        )

    async def declare(self, exchanges: Iterable[Exchange], queues: Iterable[Queue]) -> None:
        channel = self._require_channel()
        for exchange in exchanges:
            self._exchanges[exchange.name] = await channel.declare_exchange(
                exchange.name, aio_pika.ExchangeType(exchange.type), durable=True
            )
        for spec in queues:
            queue = await channel.declare_queue(
                spec.name, durable=True, arguments=queue_arguments(spec)
            )
            for exchange_name, key in spec.bindings:
                await queue.bind(await self._exchange(exchange_name), routing_key=key)

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
        message = aio_pika.Message(
            body,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            message_id=message_id,
            correlation_id=correlation_id,
            headers=headers or None,
        )
        deadline = asyncio.get_running_loop().time() + self._publish_timeout
        delay = 0.05
        while True:
            try:
                target = await self._exchange(exchange)
                await target.publish(message, routing_key=routing_key)
                return
            except (PikaPublishError, DeliveryError) as exc:
                raise PublishError(
                    f"broker refused message to {exchange}/{routing_key}: {exc}"
                ) from exc
            except _RETRYABLE as exc:
                if asyncio.get_running_loop().time() + delay > deadline:
                    raise BusError(
                        f"RabbitMQ unavailable for {self._publish_timeout:.0f}s: {exc!r}"
                    ) from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def consume(self, queue: str, handler: Handler, *, prefetch: int) -> Subscription:
        channel = await self._new_channel(prefetch)
        target = await channel.get_queue(queue, ensure=True)
        return await self._start(channel, target, handler, max(1, prefetch))

    async def consume_temporary(
        self, bindings: Iterable[tuple[str, str]], handler: Handler, *, prefetch: int = 100
    ) -> Subscription:
        channel = await self._new_channel(prefetch)
        target = await channel.declare_queue(exclusive=True, auto_delete=True)
        for exchange_name, key in bindings:
            await target.bind(exchange_name, routing_key=key)
        return await self._start(channel, target, handler, max(1, prefetch))

    async def queue_depth(self, queue: str) -> int:
        # A robust channel answers a repeated declare from its cache; ask on a fresh channel.
        if self._connection is None:
            raise BusError("not connected")
        channel = await self._connection.channel(publisher_confirms=False)
        try:
            declared = await channel.declare_queue(queue, passive=True)
            return int(declared.declaration_result.message_count or 0)
        finally:
            await channel.close()

    async def follow_stream(
        self, queue: str, handler: Handler, *, offset: str | int = "first", prefetch: int = 100
    ) -> Subscription:
        # A stream needs a prefetch and manual acks (no_ack closes the connection: 540).
        channel = await self._new_channel(prefetch)
        target = await channel.get_queue(queue, ensure=True)
        return await self._start(
            channel, target, handler, prefetch, arguments={"x-stream-offset": offset}
        )

    async def _start(
        self,
        channel: AbstractRobustChannel,
        queue: aio_pika.abc.AbstractQueue,
        handler: Handler,
        prefetch: int,
        arguments: dict[str, Any] | None = None,
    ) -> Subscription:
        async def handle(delivery: _AmqpDelivery) -> None:
            try:
                await handler(delivery)
            except Exception:
                logger.exception("amqp.handler_failed", queue=queue.name)
                if not delivery.settled:
                    with contextlib.suppress(BusError):  # a dead channel requeued it already
                        await delivery.reject(requeue=True)

        async def on_message(message: AbstractIncomingMessage) -> None:
            # aiormq cancels a channel's callbacks when the channel closes; a handler's work (a
            # job that runs for an hour) must not die with a connection blip, so it runs in a
            # task of its own. Its delivery can no longer be settled: the broker took it back.
            work = asyncio.create_task(
                handle(_AmqpDelivery(message, prefetch, self._publish_timeout))
            )
            self._handlers.add(work)
            work.add_done_callback(self._handlers.discard)
            await asyncio.shield(work)

        tag = await queue.consume(on_message, arguments=arguments)
        return _AmqpSubscription(channel, queue, tag)

    async def _new_channel(self, prefetch: int) -> AbstractRobustChannel:
        if self._connection is None:
            raise BusError("not connected")
        channel: AbstractRobustChannel = await self._connection.channel()  # type: ignore[assignment]
        await channel.set_qos(prefetch_count=max(1, prefetch))
        return channel

    async def _exchange(self, name: str) -> aio_pika.abc.AbstractExchange:
        exchange = self._exchanges.get(name)
        if exchange is None:
            exchange = await self._require_channel().get_exchange(name, ensure=True)
            self._exchanges[name] = exchange
        return exchange

    def _require_channel(self) -> AbstractRobustChannel:
        if self._channel is None:
            raise BusError("not connected")
        return self._channel


TEARDOWN_TIMEOUT = 5.0
"""How long a stop may wait on the broker. During an outage a robust channel would wait for the
reconnection forever; the broker drops a dead connection's consumers and unacked deliveries
anyway, so teardown gives up rather than hang a process that was asked to stop."""


OFFLINE_TEARDOWN_TIMEOUT = 0.1
"""How long a stop waits on a channel that is already down."""


async def _best_effort(
    what: str, operation: Awaitable[object], wait: float = TEARDOWN_TIMEOUT
) -> None:
    try:
        async with asyncio.timeout(wait):
            await operation
    except Exception as exc:  # teardown must not fail: the broker cleans up after dead peers
        logger.warning("amqp.teardown_skipped", operation=what, error=repr(exc))


def _redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1) if "://" in url else ("", url)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:****@{host}" if scheme else f"{user}:****@{host}"
