"""What the store keeps: plain immutable records, independent of any database.

Times are seconds since the epoch (floats). JSON-shaped parts (cloud spec, command …) are dicts.
Fields named ``*_encrypted`` hold Fernet tokens made by the gateway: the store sees no secret.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from megam.wire import HeldJob


class Account(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    email: str
    api_key_encrypted: str
    authority: str
    created_at: float


class PredefCloud(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    name: str
    type_name: str
    spec: dict[str, str]
    access: dict[str, str]
    credentials_encrypted: str | None
    created_at: float


class CloudTarget(msgspec.Struct, frozen=True, kw_only=True):
    """The cloud a node was launched on, copied at launch so a later delete needs nothing else."""

    name: str
    cctype: str
    spec: dict[str, str]
    access: dict[str, str]
    credentials_encrypted: str | None = None
    knife_rb: str | None = None
    """Path of the knife.rb herk passes to knife with -c, when the launch named one."""


class Node(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    name: str
    node_type: str
    status: str
    cloud: CloudTarget
    command: dict[str, Any]
    predefs: dict[str, str]
    defns_encrypted: str | None
    """The original client's appdefns/boltdefns (they may hold api keys), kept but never shown."""
    created_at: float
    updated_at: float
    appdefnsid: str = ""
    boltdefnsid: str = ""


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    state: str
    reason: str
    at: float
    exit_code: int | None = None


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """One request for a node (Megam's ``RIP…`` request) and the job herk runs for it."""

    id: str
    account_id: str
    node_id: str
    node_name: str
    req_type: str
    job_type: str
    params: dict[str, Any]
    state: str
    reason: str
    exit_code: int | None
    attempt: int
    seq: int
    herk: str
    correlation_id: str
    published: bool
    created_at: float
    updated_at: float
    history: tuple[HistoryEntry, ...] = ()
    presumed: bool = False
    """Its ending is the gateway's presumption (the reconciler's ``interrupted``), not a report
    from the attempt's runner, which may still replace it with the real outcome."""


class OutboxEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A job message waiting to be (re)published; removed once the broker confirmed it."""

    job_id: str
    routing_key: str
    body: bytes
    correlation_id: str
    attempts: int
    due_at: float


class Launch(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one launched node writes, stored atomically with the others of its request."""

    node: Node
    job: Job
    outbox: OutboxEntry


class LogLine(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    """Store-assigned, increasing in commit order: the cursor of log queries and live tails."""
    job_id: str
    attempt: int
    seq: int
    stream: str
    text: str
    at: float


class LineWindow(msgspec.Struct, frozen=True, kw_only=True):
    """Which of a node's lines a read takes: ``count`` lines after the cursor ``after`` in
    cursor order, or (``after`` None) its last ``count`` lines."""

    after: int | None
    count: int
    job_id: str | None = None

    @classmethod
    def of(cls, after: int | None, tail: int | None, limit: int, job_id: str | None) -> LineWindow:
        count = limit if after is not None or tail is None else min(tail, limit)
        return cls(after=after, count=max(count, 0), job_id=job_id)


class MetricQuery(msgspec.Struct, frozen=True, kw_only=True):
    """The latest ``limit`` points of one node since ``since``: raw samples (``step`` 0) or
    points rolled up over ``step`` seconds (one of ``ROLLUP_STEPS``); one metric if ``name``."""

    name: str | None = None
    since: float = 0.0
    step: int = 0
    limit: int = 1000


class LogQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A full-text search over an account's archived log lines; every filter is optional."""

    words: tuple[str, ...]
    """Each word must occur in a line (case-insensitive, whole words)."""
    node_name: str | None = None
    job_id: str | None = None
    job_state: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 100


class LogHit(msgspec.Struct, frozen=True, kw_only=True):
    line: LogLine
    node_name: str
    job_state: str


class MetricSample(msgspec.Struct, frozen=True, kw_only=True):
    """One point of a node's metric series: a raw sample (``step`` 0), or the roll-up of the
    ``count`` samples in ``[at, at + step)``: their mean as ``value``, their least and most as
    ``low`` and ``high``."""

    name: str
    value: float
    at: float
    step: int = 0
    low: float | None = None
    high: float | None = None
    count: int = 1


class HerkNode(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    workers: int
    busy: int
    inflight: tuple[str, ...]
    version: str
    started_at: float
    draining: bool
    last_seen: float
    held: tuple[HeldJob, ...] = ()
    """The job attempts its last heartbeat said it holds (empty from herk nodes that predate it)."""
    interval: float = 0.0
    """Seconds between its heartbeats, as it announced them (0: unknown)."""

    def holds(self, job_id: str) -> bool:
        return job_id in self.inflight or any(job.job_id == job_id for job in self.held)


class EventOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What applying one event did. ``node_id`` is set when a node's tail must be woken."""

    applied: bool
    why: str = ""
    """Why nothing changed: ``unknown job``, ``stale``, ``duplicate`` …"""
    node_id: str | None = None
    stored: int = 0
    """Log lines or metric samples added (duplicates are not counted)."""
    mismatch: bool = False
    """The event names an account or node that does not own the job: refused, dead-lettered."""


class CancelOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a cancel did to the stored job before herk heard of it."""

    job: Job
    ended_here: bool
    """True when the job had not reached the broker yet: the gateway ended it ``cancelled``
    itself (its outbox entry is gone, so it can never start)."""
    node_id: str


class JobChange(msgspec.Struct, frozen=True, kw_only=True):
    """A job as a rule left it: its fields are written, ``entry`` (if any) joins its history."""

    job: Job
    entry: HistoryEntry | None = None


class Changes(msgspec.Struct, frozen=True, kw_only=True):
    """What one rule decided to write, saved by the store in the transaction that loaded the
    records the rule read: changed jobs, changed nodes (written whole), outbox entries to drop."""

    jobs: tuple[JobChange, ...] = ()
    nodes: tuple[Node, ...] = ()
    dropped_outbox: tuple[str, ...] = ()


class Written(msgspec.Struct, frozen=True, kw_only=True):
    """What one committed transaction changed that a node's view shows: the nodes, as
    ``(account_id, name)`` (both names of a renamed node), whose node or jobs it wrote."""

    nodes: frozenset[tuple[str, str]] = frozenset()
    everything: bool = False
    """Set by writes that do not name what they touched: every view is void."""


class NodeChange(msgspec.Struct, frozen=True, kw_only=True):
    """Megam's node update: an empty value keeps what the node has."""

    status: str = ""
    new_name: str = ""
    appdefnsid: str = ""
    boltdefnsid: str = ""


class Document(msgspec.Struct, frozen=True, kw_only=True):
    """A tenant's record of one of the simple v1 kinds (ssh keys, cloud tool settings, app and
    bolt definitions and requests, marketplace addons): a JSON body, optionally a node, and at
    most one secret, encrypted by the gateway."""

    kind: str
    id: str
    account_id: str
    name: str
    """Unique per account and kind; the id when the kind has no name of its own."""
    node_id: str
    """The node it belongs to, or empty."""
    body: dict[str, Any]
    secret_encrypted: str | None
    created_at: float
    updated_at: float


ROLLUP_STEPS: Final = (300, 3600)
"""Metric samples are rolled up into 5-minute points, and those into hourly points, the way
Ganglia's round-robin archives kept ever coarser series for ever longer."""


class Retention(msgspec.Struct, frozen=True, kw_only=True):
    """How long the store keeps log lines, finished jobs (with their history and lines), and
    each resolution of the metric series: raw samples, then 5-minute, then hourly points."""

    log_seconds: float = 30 * 86400.0
    job_seconds: float = 365 * 86400.0
    metric_seconds: tuple[float, float, float] = (2 * 86400.0, 35 * 86400.0, 400 * 86400.0)
    """Raw samples, 5-minute points, hourly points: ``(0, *ROLLUP_STEPS)`` in order."""

    def keeps(self, step: int) -> float:
        """How long points of ``step`` seconds (0: raw samples) are kept."""
        return dict(zip((0, *ROLLUP_STEPS), self.metric_seconds, strict=True))[step]


class Purged(msgspec.Struct, frozen=True, kw_only=True):
    """What one retention pass dropped."""

    lines: int = 0
    jobs: int = 0
    samples: int = 0
    """Raw metric samples and rolled-up points."""
