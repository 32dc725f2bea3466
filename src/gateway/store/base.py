"""The store interface: everything the gateway persists, in typed calls, no query language.

Every read that returns tenant data takes the calling ``account_id``: isolation is part of the
signature, not something a caller may forget. Adapters pass ``tests/gateway/store`` unchanged.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence

from gateway.store.records import (
    ROLLUP_STEPS,
    Account,
    CancelOutcome,
    Document,
    EventOutcome,
    HerkNode,
    Job,
    Launch,
    LineWindow,
    LogHit,
    LogLine,
    LogQuery,
    MetricQuery,
    MetricSample,
    Node,
    NodeChange,
    OutboxEntry,
    PredefCloud,
    Purged,
    Written,
)
from megam.wire import Heartbeat, LogEvent, MetricEvent, StatusEvent


class StoreError(Exception):
    """The store could not do what was asked (unreachable, disk full …): a 503, not a bug."""


class Conflict(StoreError):
    """A write would break a uniqueness rule; the message says which."""


class NotStored(Exception):
    """A write names a record that does not exist (for the caller)."""


class Store(abc.ABC):
    def __init__(self) -> None:
        self._listeners: list[Callable[[Written], None]] = []

    def listen(self, on_commit: Callable[[Written], None]) -> None:
        """Call ``on_commit`` after every committed write that changed a node or a job, with
        the nodes it changed (a cache of node views drops exactly those)."""
        self._listeners.append(on_commit)

    def _committed(self, written: Written) -> None:
        """Adapters call this once a transaction is committed (never for one rolled back)."""
        if written.nodes or written.everything:
            for on_commit in self._listeners:
                on_commit(written)

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and create the schema on first use."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise :class:`StoreError` unless the store answers."""

    # accounts -------------------------------------------------------------------------------

    @abc.abstractmethod
    async def add_account(self, account: Account) -> None:
        """Raise :class:`Conflict` if the email is taken."""

    @abc.abstractmethod
    async def account_by_email(self, email: str) -> Account | None: ...

    # predef clouds --------------------------------------------------------------------------

    @abc.abstractmethod
    async def add_predef_cloud(self, cloud: PredefCloud) -> None:
        """Raise :class:`Conflict` if the account already has a cloud of that name."""

    @abc.abstractmethod
    async def predef_cloud(self, account_id: str, name: str) -> PredefCloud | None: ...

    @abc.abstractmethod
    async def predef_clouds(self, account_id: str) -> list[PredefCloud]: ...

    # nodes and jobs -------------------------------------------------------------------------

    @abc.abstractmethod
    async def add_launches(self, launches: Sequence[Launch]) -> None:
        """Store nodes with their create jobs and outbox entries, all or nothing.

        Raise :class:`Conflict` if a node name is in use by a node that is not deleted.
        """

    async def add_launch_groups(self, groups: Sequence[Sequence[Launch]]) -> list[Conflict | None]:
        """:meth:`add_launches` for several requests at once: each group all or nothing, and
        the :class:`Conflict` (or None) of each in order. Adapters may use one transaction."""
        results: list[Conflict | None] = []
        for group in groups:
            try:
                await self.add_launches(group)
                results.append(None)
            except Conflict as exc:
                results.append(exc)
        return results

    @abc.abstractmethod
    async def add_request(self, job: Job, outbox: OutboxEntry) -> None:
        """Store a further job for an existing node (a delete).

        Raise :class:`Conflict` if the node is deleted or a job of the same ``req_type`` is still
        unfinished for it.
        """

    @abc.abstractmethod
    async def node(self, account_id: str, name: str) -> Node | None:
        """The account's node of that name: the live one, else the latest deleted one."""

    @abc.abstractmethod
    async def node_with_jobs(self, account_id: str, name: str) -> tuple[Node, list[Job]] | None:
        """:meth:`node` and its jobs, read together."""

    @abc.abstractmethod
    async def node_by_id(self, account_id: str, node_id: str) -> Node | None: ...

    @abc.abstractmethod
    async def nodes(self, account_id: str) -> list[Node]: ...

    @abc.abstractmethod
    async def job(self, account_id: str, job_id: str) -> Job | None: ...

    @abc.abstractmethod
    async def jobs(self, account_id: str, *, node_id: str | None = None) -> list[Job]:
        """The account's jobs (of one node when ``node_id`` is given), oldest first."""

    @abc.abstractmethod
    async def update_node(self, account_id: str, name: str, change: NodeChange, at: float) -> Node:
        """Apply ``change`` to the account's live node ``name`` and return it.

        Raise :class:`NotStored` if there is no such live node, :class:`Conflict` if the new name
        is taken or the node is renamed while one of its jobs is unfinished.
        """

    @abc.abstractmethod
    async def running_jobs(self) -> list[Job]:
        """Every account's jobs in ``running``, for the reconciler (never shown to a tenant)."""

    @abc.abstractmethod
    async def cancel_job(
        self, account_id: str, job_id: str, requested_by: str, at: float
    ) -> CancelOutcome | None:
        """Record a cancel of the account's job; None if it has no such job.

        A job still in the outbox ends ``cancelled`` here and its entry is dropped; a job herk may
        hold keeps its state, with the request in its history, until herk reports the outcome.
        A finished job is left as it is.
        """

    # documents (the simple v1 kinds) ---------------------------------------------------------

    @abc.abstractmethod
    async def add_document(self, document: Document) -> None:
        """Raise :class:`Conflict` if the account has a document of that kind and name."""

    @abc.abstractmethod
    async def document(self, account_id: str, kind: str, key: str) -> Document | None:
        """The account's document of ``kind`` whose id or name is ``key``."""

    @abc.abstractmethod
    async def documents(
        self, account_id: str, kind: str, *, node_id: str | None = None
    ) -> list[Document]:
        """The account's documents of ``kind`` (of one node if given), oldest first."""

    @abc.abstractmethod
    async def replace_document(self, document: Document) -> bool:
        """Store a new body (and secret) for an existing document of its account; False if none."""

    # outbox ---------------------------------------------------------------------------------

    @abc.abstractmethod
    async def claim_outbox(self, now: float, lease: float, limit: int) -> list[OutboxEntry]:
        """Entries due at ``now``, each pushed ``lease`` seconds ahead so no one else takes it."""

    @abc.abstractmethod
    async def outbox_sent(self, job_id: str, at: float) -> None:
        """The broker confirmed the job's message: forget the entry, mark the job published."""

    async def outbox_sent_all(self, job_ids: Sequence[str], at: float) -> None:
        """:meth:`outbox_sent` for several jobs; adapters may do it in one transaction."""
        for job_id in job_ids:
            await self.outbox_sent(job_id, at)

    @abc.abstractmethod
    async def outbox_failed(self, job_id: str, error: str, retry_at: float, at: float) -> None:
        """Publishing failed: retry at ``retry_at`` and tell the job's owner why it waits."""

    @abc.abstractmethod
    async def outbox_size(self) -> int: ...

    # events from herk -----------------------------------------------------------------------

    @abc.abstractmethod
    async def apply_status(self, event: StatusEvent, *, presumed: bool = False) -> EventOutcome:
        """Move the job (and its node) on; stale, duplicate or terminal-job events do nothing
        (:func:`gateway.rules.jobs.status_event`). ``presumed``: an ending the gateway presumes
        (the reconciler's), which the attempt's own reported outcome may still replace."""

    @abc.abstractmethod
    async def add_log_lines(self, event: LogEvent) -> EventOutcome:
        """Insert lines; a line already stored (same job, attempt, seq) is skipped."""

    @abc.abstractmethod
    async def add_metrics(self, event: MetricEvent) -> EventOutcome: ...

    @abc.abstractmethod
    async def record_heartbeat(self, heartbeat: Heartbeat) -> None: ...

    # reads for the API ----------------------------------------------------------------------

    async def log_lines(
        self,
        account_id: str,
        node_id: str,
        *,
        after: int | None = None,
        tail: int | None = None,
        job_id: str | None = None,
        limit: int = 1000,
    ) -> list[LogLine]:
        """Lines in cursor order: after ``after`` (at most ``limit``), else the last ``tail``."""
        return await self._log_lines(
            account_id, node_id, LineWindow.of(after, tail, limit, job_id)
        )

    @abc.abstractmethod
    async def _log_lines(self, account_id: str, node_id: str, window: LineWindow) -> list[LogLine]:
        """The node's lines in ``window``, in cursor order."""

    @abc.abstractmethod
    async def search_logs(self, account_id: str, query: LogQuery) -> list[LogHit]:
        """The account's lines matching ``query``, newest first."""

    async def metrics(
        self,
        account_id: str,
        node_name: str,
        *,
        name: str | None = None,
        since: float = 0.0,
        step: int = 0,
        limit: int = 1000,
    ) -> list[MetricSample]:
        """The latest ``limit`` points since ``since``, oldest first: raw samples (``step`` 0)
        or points rolled up over ``step`` seconds (one of ``ROLLUP_STEPS``)."""
        if step and step not in ROLLUP_STEPS:
            raise ValueError(f"no roll-up of {step} seconds")
        query = MetricQuery(name=name, since=since, step=step, limit=limit)
        return await self._metrics(account_id, node_name, query)

    @abc.abstractmethod
    async def _metrics(
        self, account_id: str, node_name: str, query: MetricQuery
    ) -> list[MetricSample]:
        """The points ``query`` asks for, oldest first (its step is a known one)."""

    @abc.abstractmethod
    async def roll_up(self, now: float) -> int:
        """Fold the samples that arrived since the last roll-up into their 5-minute and hourly
        points, recomputing any point a late sample falls into; return the points written.
        An hour whose 5-minute points are past their retention keeps the value it has (it is
        only filled in when missing)."""

    @abc.abstractmethod
    async def herk_nodes(self) -> list[HerkNode]: ...

    # retention ------------------------------------------------------------------------------

    @abc.abstractmethod
    async def purge(self, now: float) -> Purged:
        """Drop log lines older than the store's log retention, jobs finished longer ago than
        its job retention with their lines, and metric points older than their resolution's
        retention. Samples are rolled up before they are dropped. Unfinished jobs and nodes
        are never dropped."""
