"""Wire contract v1: every message that crosses RabbitMQ (or the embedded bus).

Messages are JSON objects encoded with orjson and validated with msgspec on both ends. Each
carries ``v`` (the schema version). ``decode`` never raises anything but :class:`WireError`, whose
``reason`` is what goes into the dead-letter queue. ``docs/wire.md`` is the prose version of this
module; ``tests/test_wire.py`` keeps the two in step.
"""

from __future__ import annotations

import enum
import time
from typing import Annotated, Any, Final, TypeVar

import msgspec
import orjson

SCHEMA_VERSION: Final = 1
MAX_MESSAGE_BYTES: Final = 1024 * 1024
"""Bodies above this size are refused before they are parsed."""

# AMQP message headers (``x-megam-*``): the only place their names are spelled. HTTP header
# names are the HTTP contract and live in ``megam.hmac``.
REASON_HEADER: Final = "x-megam-reason"
"""Set by whoever dead-letters a message (herk, the gateway): the human-readable reason it was
refused or given up on."""
NOT_BEFORE_HEADER: Final = "x-megam-not-before-ms"
"""Set by herk on a retried attempt's request: epoch milliseconds (an integer) before which no
herk node starts it. An integer: AMQP carries a Python float as a 32-bit one, minutes off for an
epoch time."""
HANDED_BACK_HEADER: Final = "x-megam-handed-back-by"
"""Set by a herk node that hands a request it accepted back to the queue (it is stopping or
full): the name of that node, so another one takes it."""
HERK_HEADER: Final = "x-megam-herk"
"""Set by herk on a message it dead-letters: the name of the herk node that refused it."""
REQUEUED_HEADER: Final = "x-megam-requeued-by"
"""Set by the gateway when an operator requeues a dead letter: who asked for it."""
ROUTING_KEY_HEADER: Final = "x-megam-routing-key"
"""Set by the gateway on an event it dead-letters: the routing key the event arrived with."""

NodeName = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*$(?!\n)",
        max_length=253,
        description="a DNS-style node name, lower case, e.g. myapp1.megam.co",
    ),
]
JobId = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Z]{3}[0-9]{1,20}$(?!\n)", description="e.g. RIP4316…")
]
AccountId = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}[0-9]{1,20}$(?!\n)")]
JobType = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$(?!\n)", max_length=64)
]
ShortText = Annotated[str, msgspec.Meta(max_length=256)]


class JobState(enum.StrEnum):
    """Where a job is in its life. The last six are terminal."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    REJECTED = "rejected"

    @property
    def terminal(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


class _Message(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    v: int = SCHEMA_VERSION


class JobRequest(_Message, frozen=True):
    """Published to ``megam.requests`` by the gateway or any AMQP producer; consumed by herk.

    Self-contained: herk never reads the gateway's store. Secrets (cloud credentials) travel only
    in ``sealed``, a Fernet token readable by holders of the cluster's secret key.
    """

    job_id: JobId
    type: JobType
    node: NodeName
    account: AccountId
    correlation_id: ShortText
    params: dict[str, Any] = {}
    sealed: str | None = None
    created_at: float = 0.0
    attempt: Annotated[int, msgspec.Meta(ge=1)] = 1


class StatusEvent(_Message, frozen=True):
    """Routing key ``status.<node>`` on ``megam.events``. One per state change of a job."""

    job_id: JobId
    node: NodeName
    account: AccountId
    type: JobType
    state: JobState
    attempt: int = 1
    seq: int = 0
    """Orders the status events of one attempt of a job; higher wins."""
    reason: str = ""
    exit_code: int | None = None
    herk: str = ""
    correlation_id: str = ""
    at: float = 0.0
    started_at: float = 0.0
    """When the attempt started running (epoch s), 0 if it never did. Herk skips ``running`` for
    a job that ends within a few milliseconds: this field on its terminal event stands in for it."""


class LogLine(msgspec.Struct, array_like=True, frozen=True):
    """``[seq, stream, text, at]``: compact because logs are the bulk of the traffic."""

    seq: int
    stream: str
    text: str
    at: float


class LogEvent(_Message, frozen=True):
    """Routing key ``log.<job>``: a batch of consecutive output lines of one job attempt."""

    job_id: JobId
    node: NodeName
    account: AccountId
    attempt: int
    lines: list[LogLine]


class MetricEvent(_Message, frozen=True):
    """Routing key ``metric.<node>``: samples of one node at one instant."""

    node: NodeName
    account: AccountId
    samples: dict[str, float]
    at: float = 0.0


class HeldJob(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One job attempt a herk node holds, as its heartbeat lists it."""

    job_id: str
    attempt: int
    accepted: bool
    """True once herk acknowledged the request on acceptance: the broker will not redeliver it,
    so if this node stops beating, the job will not finish anywhere (it ended ``interrupted``)."""
    since: float
    """When the node took the job (epoch s)."""


class Heartbeat(_Message, frozen=True):
    """Routing key ``heartbeat.<herk-node>``: a herk node's state, every few seconds."""

    herk: str
    workers: int
    busy: int
    inflight: list[str]
    version: str
    started_at: float
    draining: bool = False
    at: float = 0.0
    jobs: list[HeldJob] = []
    """The job attempts this node holds (``inflight`` with attempts and acceptance)."""
    interval: float = 0.0
    """Seconds between this node's heartbeats (0: unknown)."""


class ControlCommand(_Message, frozen=True):
    """Published to ``megam.control`` with key ``control.<herk-node>`` or ``control.all``."""

    command: Annotated[str, msgspec.Meta(pattern=r"^(cancel|drain|scale|ping)$(?!\n)")]
    job_id: str | None = None
    workers: int | None = None
    requested_by: str = ""
    at: float = 0.0


class WireError(ValueError):
    """A message that cannot be accepted; ``reason`` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


M = TypeVar("M", bound=msgspec.Struct)


def encode(message: msgspec.Struct) -> bytes:
    return orjson.dumps(msgspec.to_builtins(message))


def decode(body: bytes, kind: type[M]) -> M:
    """Parse and validate ``body`` as ``kind``; raise :class:`WireError` with the reason."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise WireError(f"message too large: {len(body)} bytes, limit {MAX_MESSAGE_BYTES}")
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"invalid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise WireError(f"expected a JSON object, got {type(raw).__name__}")
    version = raw.get("v")
    if version != SCHEMA_VERSION:
        raise WireError(
            f"unsupported schema version {version!r}, this node speaks v{SCHEMA_VERSION}"
        )
    try:
        return msgspec.convert(raw, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise WireError(f"invalid {kind.__name__}: {exc}") from None


def now() -> float:
    return time.time()


def json_schema(kind: type[msgspec.Struct]) -> dict[str, Any]:
    return msgspec.json.schema(kind)
