"""Exchanges, queues and bindings of the wire contract, declared identically on both buses."""

from __future__ import annotations

import dataclasses
from typing import Final, Literal

ExchangeType = Literal["direct", "topic", "fanout"]


@dataclasses.dataclass(frozen=True, slots=True)
class Exchange:
    name: str
    type: ExchangeType


@dataclasses.dataclass(frozen=True, slots=True)
class Queue:
    name: str
    bindings: tuple[tuple[str, str], ...] = ()
    """(exchange, routing key pattern) pairs."""
    dead_letter_to: str | None = None
    """Queue name under which rejected messages are dead-lettered through ``megam.dead``."""
    delivery_limit: int | None = None
    quorum: bool = True
    stream_max_age: str | None = None
    """Set for a stream queue: how long it keeps messages (RabbitMQ's ``x-max-age``: ``7D``)."""


REQUESTS: Final = Exchange("megam.requests", "topic")
EVENTS: Final = Exchange("megam.events", "topic")
CONTROL: Final = Exchange("megam.control", "topic")
DEAD: Final = Exchange("megam.dead", "direct")
EXCHANGES: Final = (REQUESTS, EVENTS, CONTROL, DEAD)

HERK_REQUESTS: Final = Queue(
    "herk.requests",
    bindings=((REQUESTS.name, "job.#"),),
    dead_letter_to="herk.requests",
    delivery_limit=5,  # a message that keeps killing its consumer is dead-lettered, not looped
)
HERK_REQUESTS_DEAD: Final = Queue("herk.requests.dead", bindings=((DEAD.name, "herk.requests"),))
CANCELS_MARK_KEY: Final = "cancels.mark"
"""A herk node publishes a marker with this key at start: reading it back from ``herk.cancels``
proves that the node has seen every cancel published before it."""
HERK_CANCELS: Final = Queue(
    "herk.cancels",
    bindings=((CONTROL.name, "control.all"), (CONTROL.name, CANCELS_MARK_KEY)),
    quorum=False,
    stream_max_age="7D",  # a cancel outlives any job queued behind it for less than a week
)
GATEWAY_EVENTS: Final = Queue(
    "gateway.events",
    bindings=(
        (EVENTS.name, "status.#"),
        (EVENTS.name, "log.#"),
        (EVENTS.name, "metric.#"),
        (EVENTS.name, "heartbeat.#"),
    ),
    dead_letter_to="gateway.events",
    delivery_limit=5,
)
GATEWAY_EVENTS_DEAD: Final = Queue("gateway.events.dead", bindings=((DEAD.name, "gateway.events"),))

HERK_QUEUES: Final = (HERK_REQUESTS, HERK_REQUESTS_DEAD, HERK_CANCELS)
GATEWAY_QUEUES: Final = (GATEWAY_EVENTS, GATEWAY_EVENTS_DEAD)
ALL_QUEUES: Final = HERK_QUEUES + GATEWAY_QUEUES

def job_claim_key(job_id: str) -> str:
    """The key under which a herk node claims the one run of a job that is not idempotent
    (``Bus.claim_once``). On RabbitMQ it is the name of the durable queue recording the claim."""
    return f"herk.ran.{job_id}"


def claim_lock_queue(key: str) -> str:
    """On RabbitMQ, the exclusive queue a connection holds while it claims ``key``."""
    return f"{key}.claiming"


def request_key(job_type: str) -> str:
    return f"job.{job_type}"


def status_key(node: str) -> str:
    return f"status.{node}"


def log_key(job_id: str) -> str:
    return f"log.{job_id}"


def metric_key(node: str) -> str:
    return f"metric.{node}"


def heartbeat_key(herk: str) -> str:
    return f"heartbeat.{herk.replace('.', '_')}"


def control_key(herk: str | None) -> str:
    return f"control.{herk.replace('.', '_')}" if herk else "control.all"
