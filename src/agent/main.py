"""The agent's loop: sample every ``interval`` seconds and publish."""

from __future__ import annotations

import asyncio

import msgspec

from megam import log, topology, wire
from megam.bus.amqp import AmqpBus
from megam.config import DEFAULT_AMQP_URL
from megam.sampling import Sampler, publish_sample

logger = log.get("agent")


class _Identity(msgspec.Struct):
    node: wire.NodeName
    account: wire.AccountId


def check_identity(node: str, account: str) -> None:
    """Refuse at start what the gateway would refuse on every sample."""
    try:
        msgspec.convert({"node": node, "account": account}, _Identity)
    except msgspec.ValidationError as exc:
        raise ValueError(f"agent identity: {exc}") from None


async def serve(
    *, node: str, account: str, amqp_url: str | None, nginx_status_url: str | None, interval: float
) -> None:
    check_identity(node, account)
    if interval <= 0:
        raise ValueError("interval must be positive")
    bus = AmqpBus(amqp_url or DEFAULT_AMQP_URL)
    await bus.connect()
    try:
        await bus.declare((topology.EVENTS,), ())
        sampler = Sampler(nginx_status_url=nginx_status_url)
        logger.info(
            "agent.started", node=node, interval=interval, nginx_status=nginx_status_url or "none"
        )
        while True:
            await publish_sample(bus, sampler, node=node, account=account)
            await asyncio.sleep(interval)
    finally:
        await bus.close()
