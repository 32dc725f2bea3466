"""The RabbitMQ bus, on aio-pika's robust connection.

* One channel with publisher confirms for publishing (``on_return_raises`` so an unroutable
  message is an error, not a silent drop); a channel per subscription for its own prefetch.
* aio-pika replays nothing published during an outage, so ``publish`` waits for the robust
  connection to come back, up to ``publish_timeout``, and then raises :class:`BusError`. A
  nack (a quorum queue without a leader) is tried again the same way, on a new channel; only a
  return (nowhere to route it) is a :class:`PublishError`. Subscribing waits the same way.
* Callback consumers (not queue iterators: aio-pika #379), restored by the robust channel.
* ``ack(confirmed=True)``: basic.ack has no reply, but RabbitMQ's channel process handles a
  channel's methods one at a time in arrival order, and aiormq writes a connection's frames in
  call order. So a synchronous method sent on the same channel after the ack (basic.qos, same
  prefetch) answering proves that the ack was handled: the channel has settled the message with
  its queue. No answer within ``publish_timeout`` raises :class:`BusError`. (A quorum queue's
  client holds settles back only once 32 commands are in flight on the channel, which a prefetch
  below 32 rules out.)
* ``claim_once``: a key's claim is the durable classic queue named after it, holding one message,
  the holder (``x-expires`` forgets it). It is read and written under a lock, the key's exclusive
  queue (``topology.claim_lock_queue``): another connection declaring it is refused
  (RESOURCE_LOCKED), and the broker deletes it with its connection, so a claimant that dies holds
  nobody up. The holder is read with ``basic.get`` on a channel of its own (the broker closes a
  channel that asks for a missing queue) and not acknowledged, so it goes back into the queue when
  that channel closes, before the lock is released.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.exceptions import ChannelInvalidStateError, DeliveryError
from aio_pika.exceptions import PublishError as PikaPublishError

from megam import log, topology
from megam.backoff import Backoff
from megam.bus.base import Bus, BusError, Delivery, Handler, PublishError, Subscription
from megam.bus.failover import FailoverConnection, amqp_urls, redact
from megam.topology import DEAD, Exchange, Queue

logger = log.get("megam.bus.amqp")

_RETRYABLE = (
    ChannelInvalidStateError,
    aiormq.exceptions.AMQPConnectionError,
    ConnectionError,
    RuntimeError,
)


PUBLISH_RETRY_FIRST = 0.05
PUBLISH_RETRY_MAX = 1.0
"""How soon a publish is tried again after a lost connection or a nack."""

CLAIM_RETRY_FIRST = 0.01
CLAIM_RETRY_MAX = 0.2
"""How soon a claimant asks again while another connection holds the key's lock (a claim takes
a few round trips)."""

STREAM_SEGMENT_BYTES = 1_000_000
"""Streams expire whole segments: small ones let ``x-max-age`` apply to a trickle of messages."""
STREAM_MAX_BYTES = 200_000_000


def claim_arguments(keep_seconds: float) -> dict[str, Any]:
    # Classic, whatever the vhost's default: a quorum queue per claim would be a Raft group each.
    return {"x-queue-type": "classic", "x-expires": max(1, round(keep_seconds * 1000))}


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


HEARTBEAT_SECONDS: Final = 30
"""The AMQP heartbeat timeout every Megam service asks for: a connection that carried nothing
for about this long is found dead (by the broker and by the client) and reconnected."""


class AmqpBus(Bus):
    def __init__(
        self, url: str, *, publish_timeout: float = 30.0, heartbeat: int = HEARTBEAT_SECONDS
    ) -> None:
        self._urls = amqp_urls(url)
        self._publish_timeout = publish_timeout
        self._heartbeat = heartbeat
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._renewing = asyncio.Lock()
        self._claim_turn = asyncio.Lock()
        """Claims take turns: an exclusive queue locks out other connections only."""
        self._claims: aiormq.abc.AbstractConnection | None = None
        """A connection of its own for claims: the broker closes the channels of a refused
        lock or a missing queue, and a channel opened on the same connection meanwhile can
        reuse a number whose close is not finished ("second 'channel.open' seen"), a
        connection error. Here that costs a claim a retry, not every consumer a reconnect."""
        self.reconnects = 0
        self.nacked = 0
        """Publishing channels given up because the broker nacked a message on them."""

    async def connect(self) -> None:
        """Connect to the first URL of the list that answers; later losses move on along it."""
        failures: list[str] = []
        for start in range(len(self._urls)):
            connection = FailoverConnection(
                self._urls,
                start=start,
                heartbeat=self._heartbeat,
                reconnect_interval=1,
                client_properties={"connection_name": "megam"},
            )
            try:
                await connection.connect()
            except (OSError, aiormq.exceptions.AMQPError) as exc:
                failures.append(f"{redact(self._urls[start])}: {exc}")
                await _best_effort("connection.close", connection.close())
                continue
            self._connection = connection
            break
        else:
            raise BusError(f"cannot reach RabbitMQ at {'; '.join(failures)}")
        self._connection.reconnect_callbacks.add(self._on_reconnect)
        self._channel = await self._connection.channel(  # type: ignore[assignment]
            publisher_confirms=True, on_return_raises=True
        )

    @property
    def current_url(self) -> str | None:
        """The broker URL the bus is connected to (or reconnecting to) now."""
        if isinstance(self._connection, FailoverConnection):
            return self._connection.current_url
        return None

    def _on_reconnect(self, *_: object) -> None:
        self.reconnects += 1
        logger.warning("amqp.reconnected", reconnects=self.reconnects)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await self._drop_claims_connection()
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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._publish_timeout
        backoff = Backoff(PUBLISH_RETRY_FIRST, PUBLISH_RETRY_MAX)
        while True:
            channel = self._require_channel()
            try:
                target = await self._exchange(exchange)
                await target.publish(message, routing_key=routing_key)
                return
            except PikaPublishError as exc:  # basic.return: no queue is bound for it
                raise PublishError(
                    f"broker refused message to {exchange}/{routing_key}: {exc}"
                ) from exc
            except DeliveryError as exc:  # basic.nack: not taken now, see _renew_channel
                failure: BaseException = exc
                await self._renew_channel(channel, exc)
            except _RETRYABLE as exc:
                failure = exc
            if loop.time() + backoff.upcoming > deadline:
                raise BusError(
                    f"RabbitMQ did not take a message to {exchange}/{routing_key} for "
                    f"{self._publish_timeout:.0f}s: {failure!r}"
                ) from failure
            await backoff.wait()

    async def _renew_channel(self, nacked: AbstractRobustChannel, exc: DeliveryError) -> None:
        """Publish on a new channel from now on: the one that had a message nacked may be
        pinned to a dead queue leader.

        RabbitMQ nacks a message that a queue could not take: a quorum queue whose leader is
        gone until a new one is elected. But a channel opened in the moment between a broker
        node's death and the election (a client failing over at once) keeps sending to the
        leader it found when it opened, the dead one, and nacks every message to that queue
        until the dead node is back (RabbitMQ 3.10.8, seen in tests/cluster: 28 s of nacks on
        one channel while another client's channel, opened 2 s later, published normally). A
        new channel looks the leader up again."""
        async with self._renewing:
            if nacked is not self._channel or self._connection is None:
                return  # renewed already by a publish nacked at the same time
            self.nacked += 1
            logger.warning("amqp.publish_nacked", error=str(exc))
            fresh: AbstractRobustChannel = await self._connection.channel(  # type: ignore[assignment]
                publisher_confirms=True, on_return_raises=True
            )
            self._channel, self._exchanges = fresh, {}
        # Publishes still waiting for their confirm on the old channel get it (or its nack).
        self._spawn(_close_later(nacked, self._publish_timeout))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def consume(self, queue: str, handler: Handler, *, prefetch: int) -> Subscription:
        async def on(channel: AbstractRobustChannel) -> Subscription:
            target = await channel.get_queue(queue, ensure=True)
            return await self._start(channel, target, handler, max(1, prefetch))

        return await self._subscribe(queue, prefetch, on)

    async def consume_temporary(
        self, bindings: Iterable[tuple[str, str]], handler: Handler, *, prefetch: int = 100
    ) -> Subscription:
        async def on(channel: AbstractRobustChannel) -> Subscription:
            target = await channel.declare_queue(exclusive=True, auto_delete=True)
            for exchange_name, key in bindings:
                await target.bind(exchange_name, routing_key=key)
            return await self._start(channel, target, handler, max(1, prefetch))

        return await self._subscribe("a private queue", prefetch, on)

    async def _subscribe(
        self,
        what: str,
        prefetch: int,
        on: Callable[[AbstractRobustChannel], Awaitable[Subscription]],
    ) -> Subscription:
        """Subscribe on a channel of its own, waiting out a reconnection (up to
        ``publish_timeout``) as a publish does: a consumer asked for while the robust connection
        fails over (herk's intake re-consumes whenever its prefetch changes) got "Connection was
        not opened" or a reset, not a BusError, and its caller was left with no consumer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._publish_timeout
        backoff = Backoff(PUBLISH_RETRY_FIRST, PUBLISH_RETRY_MAX)
        while True:
            channel: AbstractRobustChannel | None = None
            try:
                channel = await self._new_channel(prefetch)
                return await on(channel)
            except _RETRYABLE as exc:
                if channel is not None:
                    await _best_effort("channel.close", channel.close(), OFFLINE_TEARDOWN_TIMEOUT)
                if loop.time() + backoff.upcoming > deadline:
                    raise BusError(
                        f"cannot consume from {what}: RabbitMQ unavailable for "
                        f"{self._publish_timeout:.0f}s: {exc!r}"
                    ) from exc
                await backoff.wait()

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

    async def claim_once(self, key: str, holder: str, keep_seconds: float) -> str | None:
        async with self._claim_turn:
            return await self._claim_in_turn(key, holder, keep_seconds)

    async def _claim_in_turn(self, key: str, holder: str, keep_seconds: float) -> str | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._publish_timeout
        backoff = Backoff(first=CLAIM_RETRY_FIRST, cap=CLAIM_RETRY_MAX)
        while True:
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    return await self._claim(key, holder, keep_seconds)
            except (aiormq.exceptions.ConnectionClosed, ConnectionError) as exc:
                # the claims connection broke (or was broken by a channel race): a new one
                await self._drop_claims_connection()
                if loop.time() + backoff.upcoming > deadline:
                    raise BusError(f"cannot claim {key!r}: {exc!r}") from exc
                await backoff.wait()
            except aiormq.exceptions.ChannelLockedResource:
                # Another connection is claiming the key: its claim will be the answer.
                if loop.time() + backoff.upcoming > deadline:
                    raise BusError(
                        f"{key!r} stayed locked by another claimant for "
                        f"{self._publish_timeout:.0f}s"
                    ) from None
                await backoff.wait()
            except (TimeoutError, *_RETRYABLE, aiormq.exceptions.AMQPError) as exc:
                raise BusError(f"cannot claim {key!r}: {exc!r}") from exc

    async def _claim(self, key: str, holder: str, keep_seconds: float) -> str | None:
        connection = await self._claims_connection()
        lock = topology.claim_lock_queue(key)
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            await channel.queue_declare(lock, exclusive=True)
            try:
                exists, first = await _read_claim(connection, key)
                if first is None:  # unclaimed, or its claimant died between its two steps
                    if not exists:
                        await channel.queue_declare(
                            key, durable=True, arguments=claim_arguments(keep_seconds)
                        )
                    confirmation = await channel.basic_publish(
                        holder.encode(),
                        routing_key=key,
                        properties=aiormq.spec.Basic.Properties(delivery_mode=2),
                        mandatory=True,
                    )
                    if not isinstance(confirmation, aiormq.spec.Basic.Ack):
                        raise BusError(f"the broker did not take the claim of {key!r}")
                await channel.queue_delete(lock)
            except BaseException:
                await _best_effort("claim.unlock", _delete_queue(connection, lock))
                raise
        finally:
            await _best_effort("channel.close", channel.close())
        return None if first in (None, holder) else first

    async def _claims_connection(self) -> aiormq.abc.AbstractConnection:
        """Not a robust connection: a lock must not come back by itself after a reconnect."""
        if self._connection is None:
            raise BusError("not connected")
        if self._claims is None or self._claims.is_closed:
            properties = {"connection_name": "megam claims"}
            self._claims = await aiormq.connect(
                self.current_url or self._urls[0], client_properties=properties
            )
        return self._claims

    async def _drop_claims_connection(self) -> None:
        claims, self._claims = self._claims, None
        if claims is not None and not claims.is_closed:
            await _best_effort("connection.close", claims.close())

    async def follow_stream(
        self, queue: str, handler: Handler, *, offset: str | int = "first", prefetch: int = 100
    ) -> Subscription:
        # A stream needs a prefetch and manual acks (no_ack closes the connection: 540).
        async def on(channel: AbstractRobustChannel) -> Subscription:
            target = await channel.get_queue(queue, ensure=True)
            return await self._start(
                channel, target, handler, prefetch, arguments={"x-stream-offset": offset}
            )

        return await self._subscribe(queue, prefetch, on)

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


async def _close_later(channel: AbstractRobustChannel, after: float) -> None:
    await asyncio.sleep(after)
    await _best_effort("channel.close", channel.close())


async def _read_claim(
    connection: aiormq.abc.AbstractConnection, key: str
) -> tuple[bool, str | None]:
    """Whether ``key``'s claim queue exists, and the holder it names."""
    probe = await connection.channel(publisher_confirms=False)
    try:
        got = await probe.basic_get(key)
        if isinstance(got.delivery, aiormq.spec.Basic.GetOk):
            return True, (got.body or b"").decode(errors="replace")
        return True, None
    except aiormq.exceptions.ChannelNotFoundEntity:  # the broker closed the probe
        return False, None
    finally:
        await probe.close()  # the holder, not acknowledged, goes back into the queue


async def _delete_queue(connection: aiormq.abc.AbstractConnection, name: str) -> None:
    if connection.is_closed:
        return  # an exclusive queue went with its connection
    channel = await connection.channel(publisher_confirms=False)
    try:
        await channel.queue_delete(name)
    finally:
        await channel.close()
