"""Worker-id leases through RabbitMQ: an exclusive queue ``uid.lease.<dc>.<worker>`` per id.

An exclusive queue belongs to the one connection that declared it: another connection declaring
it gets RESOURCE_LOCKED, and the broker deletes it when the owning connection dies. That is a
ZooKeeper ephemeral node without ZooKeeper. The lease uses a plain (not robust) connection: a
silent reconnect would re-declare the queue behind the keeper's back, and the keeper must know
the moment the connection drops: from then on it issues only up to the horizon it persisted.

The horizon lives in a durable queue ``uid.horizon.<dc>.<worker>`` that keeps only its newest
message (``x-max-length: 1``). A new holder reads it without consuming it, then publishes its own
horizon with a publisher confirm before using it.
"""

from __future__ import annotations

import contextlib
from typing import Final

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection

from megam import log
from megam.bus.failover import amqp_urls, redact
from megam.snowflake import wall_ms
from uid.lease import UNKNOWN_HORIZON, Lease, Leaser, LeaseUnavailable, candidates, unavailable

logger = log.get("uid.lease.amqp")

PUBLISH_TIMEOUT_S: Final = 5.0


def lease_queue(datacenter_id: int, worker_id: int) -> str:
    return f"uid.lease.{datacenter_id}.{worker_id}"


def horizon_queue(datacenter_id: int, worker_id: int) -> str:
    return f"uid.horizon.{datacenter_id}.{worker_id}"


class AmqpLease(Lease):
    can_be_lost_while_running = True

    def __init__(
        self,
        connection: AbstractConnection,
        channel: AbstractChannel,
        datacenter_id: int,
        worker_id: int,
        previous: int,
    ) -> None:
        super().__init__(datacenter_id, worker_id, previous)
        self._connection = connection
        self._channel = channel
        self._released = False
        connection.close_callbacks.add(self._on_close)

    @property
    def where(self) -> str:
        return f"rabbitmq queue {lease_queue(self.datacenter_id, self.worker_id)}"

    def _on_close(self, _sender: object, exc: BaseException | None = None) -> None:
        if not self._released:
            logger.error("uid.lease.connection_lost", where=self.where, error=repr(exc))
        self.lost.set()

    async def persist_horizon(self, until_ms: int) -> None:
        await self._channel.default_exchange.publish(
            aio_pika.Message(
                str(until_ms).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            ),
            routing_key=horizon_queue(self.datacenter_id, self.worker_id),
            timeout=PUBLISH_TIMEOUT_S,
        )

    async def release(self, last_issued_ms: int) -> None:
        if self._released:
            return
        self._released = True
        try:
            if not self.lost.is_set():
                await self.persist_horizon(last_issued_ms)
        finally:
            # Closing the connection deletes the exclusive queue: the id is free again.
            with contextlib.suppress(Exception):
                await self._connection.close()
        logger.info("uid.lease.released", where=self.where, last_issued_ms=last_issued_ms)


class AmqpLeaser(Leaser):
    kind = "rabbitmq"

    def __init__(self, url: str, *, heartbeat: int = 10, connect_timeout_s: float = 10.0) -> None:
        self._url = url
        self._heartbeat = heartbeat
        self._connect_timeout_s = connect_timeout_s

    async def _connect(self) -> aio_pika.abc.AbstractConnection:
        """The first broker of the list that answers (a cluster's nodes: the lease's exclusive
        queue lives on that node, and a lost connection is a lost lease either way)."""
        failures = []
        for url in amqp_urls(self._url):
            try:
                return await aio_pika.connect(
                    url,
                    heartbeat=self._heartbeat,
                    timeout=self._connect_timeout_s,
                    client_properties={"connection_name": "megam-uid-lease"},
                )
            except (OSError, TimeoutError, aiormq.exceptions.AMQPError) as exc:
                failures.append(f"{redact(url)}: {exc!r}")
        raise LeaseUnavailable(f"cannot reach RabbitMQ to lease a worker id: {'; '.join(failures)}")

    async def acquire(
        self, datacenter_id: int, worker_id: int | None, *, prefer: int | None = None
    ) -> AmqpLease:
        connection = await self._connect()
        # Automatic ids: first only those free of a horizon still running (a holder that vanished
        # less than a detached horizon ago), so that a restart after a crash need not wait it out.
        passes = (True, False) if worker_id is None else (False,)
        try:
            for fresh_only, candidate in (
                (fresh, c) for fresh in passes for c in candidates(worker_id, prefer)
            ):
                lease = await self._try(
                    connection, datacenter_id, candidate, fresh_only and candidate != prefer
                )
                if lease is not None:
                    logger.info(
                        "uid.lease.acquired",
                        where=lease.where,
                        worker_id=candidate,
                        previous_horizon_ms=lease.previous_horizon_ms,
                    )
                    return lease
        except BaseException:
            await connection.close()
            raise
        await connection.close()
        raise unavailable(self.kind, datacenter_id, worker_id)

    async def _try(
        self, connection: AbstractConnection, datacenter_id: int, worker_id: int, fresh_only: bool
    ) -> AmqpLease | None:
        channel = await connection.channel(publisher_confirms=True)
        name = lease_queue(datacenter_id, worker_id)
        try:
            await channel.declare_queue(name, exclusive=True)
        except aiormq.exceptions.ChannelLockedResource:
            return None  # the broker closed this channel; the connection is still fine
        previous = await _read_horizon(channel, horizon_queue(datacenter_id, worker_id))
        if fresh_only and (previous == UNKNOWN_HORIZON or previous >= wall_ms()):
            await channel.queue_delete(name)  # give it back: another id may need no wait
            await channel.close()
            return None
        return AmqpLease(connection, channel, datacenter_id, worker_id, previous)


async def _read_horizon(channel: AbstractChannel, name: str) -> int:
    queue = await channel.declare_queue(name, durable=True, arguments={"x-max-length": 1})
    message = await queue.get(no_ack=False, fail=False)
    if message is None:
        return -1
    # Put it back: if this holder dies before publishing its own horizon, the next one must
    # still find the old one.
    await message.nack(requeue=True)
    try:
        return int(message.body)
    except ValueError:
        logger.warning(
            "uid.lease.unreadable_horizon",
            queue=name,
            body=message.body[:40].decode(errors="replace"),
        )
        return UNKNOWN_HORIZON
