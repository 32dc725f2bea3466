# ruff: noqa: S608 - SQL is assembled only from this module's constant column lists and
# fragments; every value is a bound parameter.
"""The embedded store: SQLite in WAL mode, driven from dedicated threads.

One writer thread owns the only writing connection, so writes are serialised and row ids (the
log cursor) grow in commit order; a small pool of reader threads each own a read-only connection,
so reads run beside writes. Each store call is one transaction and one hop to a thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.thread import BrokenThreadPool
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import orjson

from gateway.rules import jobs as job_rules
from gateway.rules import nodes as node_rules
from gateway.rules import retention
from gateway.store import sqlite_schema
from gateway.store.base import Conflict, Store, StoreError
from gateway.store.records import (
    ROLLUP_STEPS,
    Account,
    CancelOutcome,
    Changes,
    CloudTarget,
    Document,
    EventOutcome,
    HerkNode,
    HistoryEntry,
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
    Retention,
    Written,
)
from megam.wire import Heartbeat, HeldJob, JobState, LogEvent, MetricEvent, StatusEvent

T = TypeVar("T")
Row = tuple[Any, ...]

_ACCOUNT = "id, email, api_key_encrypted, authority, created_at"
_CLOUD = "id, account_id, name, type_name, spec, access, credentials_encrypted, created_at"
_NODE = (
    "id, account_id, name, node_type, status, cloud, command, predefs, defns_encrypted, "
    "created_at, updated_at, appdefnsid, boltdefnsid"
)
_DOCUMENT = "kind, id, account_id, name, node_id, body, secret_encrypted, created_at, updated_at"
_JOB = (
    "id, account_id, node_id, node_name, req_type, job_type, params, state, reason, exit_code, "
    "attempt, seq, herk, correlation_id, published, created_at, updated_at, presumed"
)
_JOB_CHANGES = "state, reason, exit_code, attempt, seq, herk, published, updated_at, presumed"
"""The columns of a job that change after it is stored (its history grows in job_history)."""
_UPDATE_JOB = (
    f"UPDATE jobs SET {', '.join(c + ' = ?' for c in _JOB_CHANGES.split(', '))} WHERE id = ?"
)
_LINE = "id, job_id, attempt, seq, stream, text, at"
_UNFINISHED = (JobState.QUEUED.value, JobState.RUNNING.value)


class _Connections:
    """A thread pool whose every thread owns one SQLite connection."""

    def __init__(self, path: Path, *, threads: int, readonly: bool, name: str) -> None:
        self._path = path
        self._readonly = readonly
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._executor = ThreadPoolExecutor(
            threads, thread_name_prefix=name, initializer=self._connect
        )

    def _connect(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        for pragma in sqlite_schema.PRAGMAS:
            conn.execute(pragma)
        if self._readonly:
            conn.execute("PRAGMA query_only = ON")
        self._local.conn = conn
        with self._lock:
            self._opened.append(conn)

    async def run(self, work: Callable[..., T], *args: Any) -> tuple[T, Written]:
        """``work(conn, *args)`` in one transaction; its result and the nodes it wrote."""
        if self._closed:
            raise StoreError(f"SQLite store {self._path} is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._transaction, work, args)
        except (sqlite3.Error, BrokenThreadPool) as exc:
            raise StoreError(f"SQLite store {self._path}: {exc}") from exc

    def _transaction(self, work: Callable[..., T], args: tuple[Any, ...]) -> tuple[T, Written]:
        conn: sqlite3.Connection = self._local.conn
        conn.execute("BEGIN" if self._readonly else "BEGIN IMMEDIATE")
        try:
            result = work(conn, *args)
            written = Written() if self._readonly else _drain_written(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # also when COMMIT itself failed
                conn.execute("ROLLBACK")
            raise
        return result, written

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=True)
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()


class SqliteStore(Store):
    def __init__(self, path: Path, *, readers: int = 2, retention: Retention | None = None) -> None:
        super().__init__()
        self.path = path
        self.retention = retention or Retention()
        self._readers_count = readers
        self._writer: _Connections | None = None
        self._readers: _Connections | None = None

    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the data directory {self.path.parent}: {exc}") from exc
        self._writer = _Connections(self.path, threads=1, readonly=False, name="sqlite-writer")
        self._readers = _Connections(
            self.path, threads=self._readers_count, readonly=True, name="sqlite-reader"
        )
        await self._write(_create_schema)
        await self._write(_analyze)

    async def close(self) -> None:
        for pool in (self._readers, self._writer):
            if pool is not None:
                await asyncio.to_thread(pool.close)
        self._readers = self._writer = None

    async def ping(self) -> None:
        await self._read(lambda conn: conn.execute("SELECT 1").fetchone())

    async def _write(self, work: Callable[..., T], *args: Any) -> T:
        if self._writer is None:
            raise StoreError("store is not open")
        result, written = await self._writer.run(work, *args)
        self._committed(written)
        return result

    async def _read(self, work: Callable[..., T], *args: Any) -> T:
        if self._readers is None:
            raise StoreError("store is not open")
        result, _ = await self._readers.run(work, *args)
        return result

    # accounts -------------------------------------------------------------------------------

    async def add_account(self, account: Account) -> None:
        await self._write(_insert_account, account)

    async def account_by_email(self, email: str) -> Account | None:
        row = await self._read(_one, f"SELECT {_ACCOUNT} FROM accounts WHERE email = ?", (email,))
        return None if row is None else Account(**dict(zip(_ACCOUNT.split(", "), row, strict=True)))

    # predef clouds --------------------------------------------------------------------------

    async def add_predef_cloud(self, cloud: PredefCloud) -> None:
        await self._write(_insert_cloud, cloud)

    async def predef_cloud(self, account_id: str, name: str) -> PredefCloud | None:
        row = await self._read(
            _one,
            f"SELECT {_CLOUD} FROM predef_clouds WHERE account_id = ? AND name = ?",
            (account_id, name),
        )
        return None if row is None else _cloud(row)

    async def predef_clouds(self, account_id: str) -> list[PredefCloud]:
        rows = await self._read(
            _all,
            f"SELECT {_CLOUD} FROM predef_clouds WHERE account_id = ? ORDER BY created_at, id",
            (account_id,),
        )
        return [_cloud(row) for row in rows]

    # nodes and jobs -------------------------------------------------------------------------

    async def add_launches(self, launches: Sequence[Launch]) -> None:
        await self._write(_insert_launches, launches)

    async def add_launch_groups(self, groups: Sequence[Sequence[Launch]]) -> list[Conflict | None]:
        return await self._write(_insert_launch_groups, groups)

    async def add_request(self, job: Job, outbox: OutboxEntry) -> None:
        await self._write(_insert_request, job, outbox)

    async def node(self, account_id: str, name: str) -> Node | None:
        return await self._read(_select_node, account_id, name)

    async def node_with_jobs(self, account_id: str, name: str) -> tuple[Node, list[Job]] | None:
        return await self._read(_select_node_with_jobs, account_id, name)

    async def node_by_id(self, account_id: str, node_id: str) -> Node | None:
        return await self._read(_node_by_id, node_id, account_id)

    async def nodes(self, account_id: str) -> list[Node]:
        rows = await self._read(
            _all,
            f"SELECT {_NODE} FROM nodes WHERE account_id = ? ORDER BY created_at, id",
            (account_id,),
        )
        return [_node(row) for row in rows]

    async def job(self, account_id: str, job_id: str) -> Job | None:
        jobs = await self._read(_select_jobs, "j.account_id = ? AND j.id = ?", (account_id, job_id))
        return jobs[0] if jobs else None

    async def jobs(self, account_id: str, *, node_id: str | None = None) -> list[Job]:
        if node_id is None:
            return await self._read(_select_jobs, "j.account_id = ?", (account_id,))
        return await self._read(_select_node_jobs, account_id, node_id)

    async def update_node(self, account_id: str, name: str, change: NodeChange, at: float) -> Node:
        return await self._write(_update_node, account_id, name, change, at)

    async def add_document(self, document: Document) -> None:
        await self._write(_insert_document, document)

    async def document(self, account_id: str, kind: str, key: str) -> Document | None:
        row = await self._read(
            _one,
            f"SELECT {_DOCUMENT} FROM documents WHERE account_id = ? AND kind = ? "
            "AND (id = ? OR name = ?) ORDER BY id = ? DESC LIMIT 1",
            (account_id, kind, key, key, key),
        )
        return None if row is None else _document(row)

    async def documents(
        self, account_id: str, kind: str, *, node_id: str | None = None
    ) -> list[Document]:
        where, args = "account_id = ? AND kind = ?", (account_id, kind)
        if node_id is not None:
            where, args = where + " AND node_id = ?", (*args, node_id)
        rows = await self._read(
            _all, f"SELECT {_DOCUMENT} FROM documents WHERE {where} ORDER BY created_at, id", args
        )
        return [_document(row) for row in rows]

    async def replace_document(self, document: Document) -> bool:
        return await self._write(_replace_document, document)

    async def running_jobs(self) -> list[Job]:
        return await self._read(_select_jobs, "j.state = ?", (JobState.RUNNING.value,))

    async def cancel_job(
        self, account_id: str, job_id: str, requested_by: str, at: float
    ) -> CancelOutcome | None:
        return await self._write(_cancel_job, account_id, job_id, requested_by, at)

    # outbox ---------------------------------------------------------------------------------

    async def claim_outbox(self, now: float, lease: float, limit: int) -> list[OutboxEntry]:
        return await self._write(_claim_outbox, now, lease, limit)

    async def outbox_sent(self, job_id: str, at: float) -> None:
        await self._write(_outbox_sent, job_id, at)

    async def outbox_sent_all(self, job_ids: Sequence[str], at: float) -> None:
        await self._write(_outbox_sent_all, job_ids, at)

    async def outbox_failed(self, job_id: str, error: str, retry_at: float, at: float) -> None:
        await self._write(_outbox_failed, job_id, error, retry_at, at)

    async def outbox_size(self) -> int:
        row = await self._read(_one, "SELECT count(*) FROM outbox", ())
        return int(row[0]) if row else 0

    # events ---------------------------------------------------------------------------------

    async def apply_status(self, event: StatusEvent, *, presumed: bool = False) -> EventOutcome:
        return await self._write(_apply_status, event, presumed)

    async def add_log_lines(self, event: LogEvent) -> EventOutcome:
        return await self._write(_insert_log_lines, event)

    async def add_metrics(self, event: MetricEvent) -> EventOutcome:
        return await self._write(_insert_metrics, event)

    async def record_heartbeat(self, heartbeat: Heartbeat) -> None:
        await self._write(_upsert_heartbeat, heartbeat)

    # reads ----------------------------------------------------------------------------------

    async def _log_lines(self, account_id: str, node_id: str, window: LineWindow) -> list[LogLine]:
        where = "account_id = ? AND node_id = ?"
        args: list[Any] = [account_id, node_id]
        if window.job_id is not None:
            where += " AND job_id = ?"
            args.append(window.job_id)
        if window.after is not None:
            sql = f"SELECT {_LINE} FROM log_lines WHERE {where} AND id > ? ORDER BY id LIMIT ?"
            args += [window.after, window.count]
        else:
            sql = (
                f"SELECT * FROM (SELECT {_LINE} FROM log_lines WHERE {where} "
                "ORDER BY id DESC LIMIT ?) ORDER BY id"
            )
            args.append(window.count)
        rows = await self._read(_all, sql, tuple(args))
        return [LogLine(**dict(zip(_LINE.split(", "), row, strict=True))) for row in rows]

    async def search_logs(self, account_id: str, query: LogQuery) -> list[LogHit]:
        if not query.words:
            return []
        where = ["log_search MATCH ?", "l.account_id = ?"]
        args: list[Any] = [_fts_all_words(query.words), account_id]
        for clause, value in (
            ("j.node_name = ?", query.node_name),
            ("l.job_id = ?", query.job_id),
            ("j.state = ?", query.job_state),
            ("l.at >= ?", query.since),
            ("l.at < ?", query.until),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        sql = (
            f"SELECT {', '.join('l.' + c for c in _LINE.split(', '))}, j.node_name, j.state "
            "FROM log_search JOIN log_lines l ON l.id = log_search.rowid "
            f"JOIN jobs j ON j.id = l.job_id WHERE {' AND '.join(where)} "
            "ORDER BY l.id DESC LIMIT ?"
        )
        rows = await self._read(_all, sql, (*args, query.limit))
        names = _LINE.split(", ")
        return [
            LogHit(
                line=LogLine(**dict(zip(names, row[:7], strict=True))),
                node_name=row[7],
                job_state=row[8],
            )
            for row in rows
        ]

    async def _metrics(
        self, account_id: str, node_name: str, query: MetricQuery
    ) -> list[MetricSample]:
        if query.step:
            return await self._rollups(account_id, node_name, query)
        where = "account_id = ? AND node_name = ? AND at >= ?"
        args: list[Any] = [account_id, node_name, query.since]
        if query.name is not None:
            where += " AND name = ?"
            args.append(query.name)
        sql = (
            f"SELECT * FROM (SELECT name, value, at FROM metric_samples WHERE {where} "
            "ORDER BY at DESC, id DESC LIMIT ?) ORDER BY at, name"
        )
        rows = await self._read(_all, sql, (*args, query.limit))
        return [MetricSample(name=r[0], value=r[1], at=r[2]) for r in rows]

    async def _rollups(
        self, account_id: str, node_name: str, query: MetricQuery
    ) -> list[MetricSample]:
        step = query.step
        # a point covers [at, at + step): the one holding ``since`` is in
        where = "account_id = ? AND node_name = ? AND step = ? AND at > ?"
        args: list[Any] = [account_id, node_name, step, query.since - step]
        if query.name is not None:
            where += " AND name = ?"
            args.append(query.name)
        sql = (
            "SELECT * FROM (SELECT name, value, at, low, high, count FROM metric_rollups "
            f"WHERE {where} ORDER BY at DESC, name DESC LIMIT ?) ORDER BY at, name"
        )
        rows = await self._read(_all, sql, (*args, query.limit))
        return [
            MetricSample(name=r[0], value=r[1], at=r[2], step=step, low=r[3], high=r[4], count=r[5])
            for r in rows
        ]

    async def roll_up(self, now: float) -> int:
        # in batches, so a long backlog never holds the writer (and event ingestion) for long
        written = 0
        while True:
            points, more = await self._write(
                _roll_up_batch, ROLLUP_BATCH, now - self.retention.keeps(ROLLUP_STEPS[0])
            )
            written += points
            if not more:
                return written

    async def herk_nodes(self) -> list[HerkNode]:
        rows = await self._read(
            _all,
            "SELECT name, workers, busy, inflight, version, started_at, draining, last_seen, "
            "held, interval FROM herk_nodes ORDER BY name",
            (),
        )
        return [
            HerkNode(
                name=r[0],
                workers=r[1],
                busy=r[2],
                inflight=tuple(orjson.loads(r[3])),
                version=r[4],
                started_at=r[5],
                draining=bool(r[6]),
                last_seen=r[7],
                held=tuple(msgspec.json.decode(r[8], type=list[HeldJob])),
                interval=r[9],
            )
            for r in rows
        ]

    async def purge(self, now: float) -> Purged:
        await self.roll_up(now)
        cut = retention.cutoffs(self.retention, now)
        lines, jobs = await self._write(_purge, cut.lines_before, cut.jobs_before)
        samples = await self._write(_purge_metrics, cut.metrics_before)
        await self._write(_analyze)  # hourly: the planner's statistics follow the data
        return Purged(lines=lines, jobs=jobs, samples=samples)


# Work functions: each runs inside one transaction on a store thread. -----------------------


def _create_schema(conn: sqlite3.Connection) -> None:
    for statement in _statements(sqlite_schema.SCHEMA):
        conn.execute(statement)
    _add_missing_columns(conn)
    if conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 0:
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (sqlite_schema.VERSION,))
    found = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    if found != sqlite_schema.VERSION:
        raise StoreError(f"database schema v{found} is not v{sqlite_schema.VERSION}")
    for statement in _statements(sqlite_schema.WRITTEN):  # the writer's own, once the tables exist
        conn.execute(statement)


def _analyze(conn: sqlite3.Connection) -> None:
    """Refresh the planner's statistics, reading at most ``ANALYSIS_LIMIT`` rows per index so
    it stays cheap on a large database."""
    conn.execute(f"PRAGMA analysis_limit = {sqlite_schema.ANALYSIS_LIMIT}")
    conn.execute("ANALYZE")


def _drain_written(conn: sqlite3.Connection) -> Written:
    """The nodes this transaction wrote, as the writer's triggers recorded them (see
    ``sqlite_schema.WRITTEN``, created by the store's first transaction, ``_create_schema``)."""
    rows = conn.execute("SELECT DISTINCT account_id, name FROM temp.written").fetchall()
    if rows:
        conn.execute("DELETE FROM temp.written")
    return Written(nodes=frozenset((row[0], row[1]) for row in rows))


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Columns added to v1 after it shipped: additive, with defaults, so no version bump."""
    for table, column, definition in sqlite_schema.ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")


def _statements(script: str) -> list[str]:
    """Split a script into statements (triggers hold semicolons of their own)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return [s for s in statements if s]


def _one(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> Row | None:
    return conn.execute(sql, args).fetchone()


def _all(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> list[Row]:
    return conn.execute(sql, args).fetchall()


def _fts_all_words(words: Sequence[str]) -> str:
    """An FTS5 query matching lines that hold every word; user text never reaches the FTS
    query syntax unquoted (a colon or a minus would mean something to it)."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _is_unique_violation(exc: sqlite3.IntegrityError) -> bool:
    return "UNIQUE" in str(exc)


def _insert_account(conn: sqlite3.Connection, account: Account) -> None:
    try:
        conn.execute(
            f"INSERT INTO accounts ({_ACCOUNT}) VALUES (?, ?, ?, ?, ?)",
            (
                account.id,
                account.email,
                account.api_key_encrypted,
                account.authority,
                account.created_at,
            ),
        )
    except sqlite3.IntegrityError as exc:
        if _is_unique_violation(exc):
            raise Conflict(f"an account for {account.email} already exists") from None
        raise


def _insert_cloud(conn: sqlite3.Connection, cloud: PredefCloud) -> None:
    try:
        conn.execute(
            f"INSERT INTO predef_clouds ({_CLOUD}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                cloud.id,
                cloud.account_id,
                cloud.name,
                cloud.type_name,
                _json(cloud.spec),
                _json(cloud.access),
                cloud.credentials_encrypted,
                cloud.created_at,
            ),
        )
    except sqlite3.IntegrityError as exc:
        if _is_unique_violation(exc):
            raise Conflict(f"you already have a predef cloud named {cloud.name!r}") from None
        raise


def _cloud(row: Row) -> PredefCloud:
    return PredefCloud(
        id=row[0],
        account_id=row[1],
        name=row[2],
        type_name=row[3],
        spec=orjson.loads(row[4]),
        access=orjson.loads(row[5]),
        credentials_encrypted=row[6],
        created_at=row[7],
    )


def _node(row: Row) -> Node:
    return Node(
        id=row[0],
        account_id=row[1],
        name=row[2],
        node_type=row[3],
        status=row[4],
        cloud=msgspec.json.decode(row[5], type=CloudTarget),
        command=orjson.loads(row[6]),
        predefs=orjson.loads(row[7]),
        defns_encrypted=row[8],
        created_at=row[9],
        updated_at=row[10],
        appdefnsid=row[11],
        boltdefnsid=row[12],
    )


def _select_node(conn: sqlite3.Connection, account_id: str, name: str) -> Node | None:
    row = conn.execute(
        f"SELECT {_NODE} FROM nodes WHERE account_id = ? AND name = ? "
        "ORDER BY status <> 'DELETED' DESC, created_at DESC LIMIT 1",
        (account_id, name),
    ).fetchone()
    return None if row is None else _node(row)


def _select_node_with_jobs(
    conn: sqlite3.Connection, account_id: str, name: str
) -> tuple[Node, list[Job]] | None:
    node = _select_node(conn, account_id, name)
    if node is None:
        return None
    return node, _select_node_jobs(conn, account_id, node.id)


def _insert_launches(conn: sqlite3.Connection, launches: Sequence[Launch]) -> None:
    for launch in launches:
        node = launch.node
        try:
            conn.execute(
                f"INSERT INTO nodes ({_NODE}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    node.id,
                    node.account_id,
                    node.name,
                    node.node_type,
                    node.status,
                    msgspec.json.encode(node.cloud).decode(),
                    _json(node.command),
                    _json(node.predefs),
                    node.defns_encrypted,
                    node.created_at,
                    node.updated_at,
                    node.appdefnsid,
                    node.boltdefnsid,
                ),
            )
        except sqlite3.IntegrityError as exc:
            if _is_unique_violation(exc):
                raise Conflict(f"a node named {node.name} already exists") from None
            raise
        _insert_job(conn, launch.job, launch.outbox)


def _insert_launch_groups(
    conn: sqlite3.Connection, groups: Sequence[Sequence[Launch]]
) -> list[Conflict | None]:
    results: list[Conflict | None] = []
    for group in groups:
        conn.execute("SAVEPOINT launch")
        try:
            _insert_launches(conn, group)
            results.append(None)
        except Conflict as exc:
            conn.execute("ROLLBACK TO launch")
            results.append(exc)
        conn.execute("RELEASE launch")
    return results


def _insert_request(conn: sqlite3.Connection, job: Job, outbox: OutboxEntry) -> None:
    node = _node_by_id(conn, job.node_id, job.account_id)
    node_rules.admit_request(job, node, _unfinished_job(conn, job.node_id, job.req_type))
    _insert_job(conn, job, outbox)


def _unfinished_job(
    conn: sqlite3.Connection, node_id: str, req_type: str | None = None
) -> str | None:
    """The id of one of the node's unfinished jobs (of ``req_type`` if given), else None."""
    where, args = "node_id = ? AND state IN (?, ?)", (node_id, *_UNFINISHED)
    if req_type is not None:
        where, args = where + " AND req_type = ?", (*args, req_type)
    row = conn.execute(f"SELECT id FROM jobs WHERE {where} LIMIT 1", args).fetchone()
    return None if row is None else str(row[0])


def _node_by_id(
    conn: sqlite3.Connection, node_id: str, account_id: str | None = None
) -> Node | None:
    where, args = "id = ?", (node_id,)
    if account_id is not None:
        where, args = where + " AND account_id = ?", (*args, account_id)
    row = conn.execute(f"SELECT {_NODE} FROM nodes WHERE {where}", args).fetchone()
    return None if row is None else _node(row)


def _insert_job(conn: sqlite3.Connection, job: Job, outbox: OutboxEntry) -> None:
    conn.execute(
        f"INSERT INTO jobs ({_JOB}) VALUES ({', '.join('?' * len(_JOB.split(', ')))})",
        _job_values(job, _JOB),
    )
    for entry in job.history:
        _insert_history(conn, job.id, entry)
    conn.execute(
        "INSERT INTO outbox (job_id, routing_key, body, correlation_id, attempts, due_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            outbox.job_id,
            outbox.routing_key,
            outbox.body,
            outbox.correlation_id,
            outbox.attempts,
            outbox.due_at,
        ),
    )


def _job_values(job: Job, columns: str) -> tuple[Any, ...]:
    """The row values of ``job`` for ``columns`` (a list like :data:`_JOB`)."""
    values = msgspec.structs.asdict(job)
    values |= {
        "params": _json(job.params),
        "published": int(job.published),
        "presumed": int(job.presumed),
    }
    return tuple(values[column] for column in columns.split(", "))


def _insert_history(conn: sqlite3.Connection, job_id: str, entry: HistoryEntry) -> None:
    conn.execute(
        "INSERT INTO job_history (job_id, state, reason, exit_code, at) VALUES (?, ?, ?, ?, ?)",
        (job_id, entry.state, entry.reason, entry.exit_code, entry.at),
    )


def _select_node_jobs(conn: sqlite3.Connection, account_id: str, node_id: str) -> list[Job]:
    # The planner would pick jobs_by_account for these terms (it also gives created_at order)
    # and read every job of the account: a node's read must cost its own jobs, not the fleet's.
    return _select_jobs(
        conn, "j.account_id = ? AND j.node_id = ?", (account_id, node_id), "jobs_by_node"
    )


def _select_jobs(
    conn: sqlite3.Connection, where: str, args: tuple[Any, ...], index: str = ""
) -> list[Job]:
    jobs = f"jobs j INDEXED BY {index}" if index else "jobs j"
    rows = conn.execute(
        f"SELECT {', '.join('j.' + c for c in _JOB.split(', '))} FROM {jobs} WHERE {where} "
        "ORDER BY j.created_at, j.id",
        args,
    ).fetchall()
    history: dict[str, list[HistoryEntry]] = {}
    for job_id, state, reason, exit_code, at in conn.execute(
        "SELECT h.job_id, h.state, h.reason, h.exit_code, h.at FROM job_history h "
        f"JOIN {jobs} ON j.id = h.job_id WHERE {where} ORDER BY h.id",
        args,
    ):
        history.setdefault(job_id, []).append(
            HistoryEntry(state=state, reason=reason, exit_code=exit_code, at=at)
        )
    return [_job(row, history.get(row[0], ())) for row in rows]


def _job(row: Row, history: Sequence[HistoryEntry]) -> Job:
    return Job(
        id=row[0],
        account_id=row[1],
        node_id=row[2],
        node_name=row[3],
        req_type=row[4],
        job_type=row[5],
        params=orjson.loads(row[6]),
        state=row[7],
        reason=row[8],
        exit_code=row[9],
        attempt=row[10],
        seq=row[11],
        herk=row[12],
        correlation_id=row[13],
        published=bool(row[14]),
        created_at=row[15],
        updated_at=row[16],
        history=tuple(history),
        presumed=bool(row[17]),
    )


def _claim_outbox(
    conn: sqlite3.Connection, now: float, lease: float, limit: int
) -> list[OutboxEntry]:
    rows = conn.execute(
        "SELECT job_id, routing_key, body, correlation_id, attempts FROM outbox "
        "WHERE due_at <= ? ORDER BY due_at, job_id LIMIT ?",
        (now, limit),
    ).fetchall()
    conn.executemany(
        "UPDATE outbox SET due_at = ? WHERE job_id = ?", [(now + lease, r[0]) for r in rows]
    )
    return [
        OutboxEntry(
            job_id=r[0],
            routing_key=r[1],
            body=bytes(r[2]),
            correlation_id=r[3],
            attempts=r[4],
            due_at=now + lease,
        )
        for r in rows
    ]


def _outbox_sent(conn: sqlite3.Connection, job_id: str, at: float) -> None:
    entry = conn.execute("SELECT attempts FROM outbox WHERE job_id = ?", (job_id,)).fetchone()
    failures = entry[0] if entry else 0
    _save(conn, job_rules.published(job_id, _job_row(conn, job_id), failures, at))


def _outbox_sent_all(conn: sqlite3.Connection, job_ids: Sequence[str], at: float) -> None:
    for job_id in job_ids:
        _outbox_sent(conn, job_id, at)


def _outbox_failed(
    conn: sqlite3.Connection, job_id: str, error: str, retry_at: float, at: float
) -> None:
    entry = conn.execute("SELECT attempts FROM outbox WHERE job_id = ?", (job_id,)).fetchone()
    if entry is None:
        return  # published meanwhile by someone else
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, due_at = ?, last_error = ? WHERE job_id = ?",
        (retry_at, error, job_id),
    )
    change = job_rules.publish_failed(_job_row(conn, job_id), error, first=entry[0] == 0, at=at)
    if change is not None:
        _save(conn, Changes(jobs=(change,)))


def _job_row(conn: sqlite3.Connection, job_id: str) -> Job | None:
    """The job without its history, for a write: a write only appends to the history."""
    row = conn.execute(f"SELECT {_JOB} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else _job(row, ())


def _job_and_node(conn: sqlite3.Connection, job_id: str) -> tuple[Job, Node] | None:
    job = _job_row(conn, job_id)
    node = None if job is None else _node_by_id(conn, job.node_id)
    return None if job is None or node is None else (job, node)


def _apply_status(conn: sqlite3.Connection, event: StatusEvent, presumed: bool) -> EventOutcome:
    found = _job_and_node(conn, event.job_id)
    decision = job_rules.status_event(found, event, time.time(), presumed=presumed)
    _save(conn, decision.changes)
    return decision.outcome


def _update_node(
    conn: sqlite3.Connection, account_id: str, name: str, change: NodeChange, at: float
) -> Node:
    node = _select_node(conn, account_id, name)
    busy = node is not None and _unfinished_job(conn, node.id) is not None
    updated = node_rules.updated(node, name, change, busy=busy, at=at)
    _save(conn, Changes(nodes=(updated,)))
    return updated


def _save(conn: sqlite3.Connection, changes: Changes) -> None:
    """Write what a rule decided: jobs' fields and new history entries, nodes, dropped entries."""
    for change in changes.jobs:
        job = change.job
        conn.execute(_UPDATE_JOB, (*_job_values(job, _JOB_CHANGES), job.id))
        if change.entry is not None:
            _insert_history(conn, job.id, change.entry)
    for node in changes.nodes:
        _save_node(conn, node)
    for job_id in changes.dropped_outbox:
        conn.execute("DELETE FROM outbox WHERE job_id = ?", (job_id,))


def _save_node(conn: sqlite3.Connection, node: Node) -> None:
    try:
        conn.execute(
            "UPDATE nodes SET status = ?, name = ?, appdefnsid = ?, boltdefnsid = ?, "
            "updated_at = ? WHERE id = ?",
            (node.status, node.name, node.appdefnsid, node.boltdefnsid, node.updated_at, node.id),
        )
    except sqlite3.IntegrityError as exc:
        if _is_unique_violation(exc):
            raise Conflict(f"a node named {node.name} already exists") from None
        raise


def _insert_document(conn: sqlite3.Connection, document: Document) -> None:
    try:
        conn.execute(
            f"INSERT INTO documents ({_DOCUMENT}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                document.kind,
                document.id,
                document.account_id,
                document.name,
                document.node_id,
                _json(document.body),
                document.secret_encrypted,
                document.created_at,
                document.updated_at,
            ),
        )
    except sqlite3.IntegrityError as exc:
        if _is_unique_violation(exc):
            raise Conflict(f"you already have a {document.kind} named {document.name!r}") from None
        raise


def _replace_document(conn: sqlite3.Connection, document: Document) -> bool:
    changed = conn.execute(
        "UPDATE documents SET body = ?, secret_encrypted = ?, updated_at = ? "
        "WHERE id = ? AND account_id = ? AND kind = ?",
        (
            _json(document.body),
            document.secret_encrypted,
            document.updated_at,
            document.id,
            document.account_id,
            document.kind,
        ),
    ).rowcount
    return changed > 0


def _document(row: Row) -> Document:
    return Document(
        kind=row[0],
        id=row[1],
        account_id=row[2],
        name=row[3],
        node_id=row[4],
        body=orjson.loads(row[5]),
        secret_encrypted=row[6],
        created_at=row[7],
        updated_at=row[8],
    )


def _cancel_job(
    conn: sqlite3.Connection, account_id: str, job_id: str, requested_by: str, at: float
) -> CancelOutcome | None:
    found = _select_jobs(conn, "j.account_id = ? AND j.id = ?", (account_id, job_id))
    if not found:
        return None
    job = found[0]
    node = _node_by_id(conn, job.node_id)
    assert node is not None  # a job's node is never dropped (foreign key)
    in_outbox = conn.execute("SELECT 1 FROM outbox WHERE job_id = ?", (job_id,)).fetchone()
    cancel = job_rules.cancel(
        job, node, in_outbox=in_outbox is not None, requested_by=requested_by, at=at
    )
    _save(conn, cancel.changes)
    return cancel.outcome


def _insert_log_lines(conn: sqlite3.Connection, event: LogEvent) -> EventOutcome:
    job = job_rules.owned(_job_row(conn, event.job_id), event.job_id, event.account, event.node)
    if isinstance(job, EventOutcome):
        return job
    node_id = job.node_id
    before = conn.total_changes
    conn.executemany(
        "INSERT OR IGNORE INTO log_lines "
        "(account_id, node_id, job_id, attempt, seq, stream, text, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (event.account, node_id, event.job_id, event.attempt, ln.seq, ln.stream, ln.text, ln.at)
            for ln in event.lines
        ],
    )
    inserted = conn.total_changes - before
    return EventOutcome(
        applied=inserted > 0, why="" if inserted else "duplicate", node_id=node_id, stored=inserted
    )


def _insert_metrics(conn: sqlite3.Connection, event: MetricEvent) -> EventOutcome:
    known = conn.execute(
        "SELECT id FROM nodes WHERE account_id = ? AND name = ? "
        "ORDER BY status <> 'DELETED' DESC, created_at DESC LIMIT 1",
        (event.account, event.node),
    ).fetchone()
    if known is None:
        return EventOutcome(applied=False, why="unknown node")
    at = event.at or time.time()
    before = conn.total_changes
    conn.executemany(
        "INSERT INTO metric_samples (account_id, node_name, name, value, at) "
        "SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM metric_samples "
        "WHERE account_id = ? AND node_name = ? AND name = ? AND at = ?)",
        [
            (event.account, event.node, name, value, at, event.account, event.node, name, at)
            for name, value in event.samples.items()
        ],
    )
    inserted = conn.total_changes - before
    return EventOutcome(
        applied=inserted > 0, why="" if inserted else "duplicate", node_id=known[0], stored=inserted
    )


ROLLUP_BATCH = 20_000
"""Raw samples folded per write transaction."""

_ROLLED_UP_UNTIL = "metric_samples_rolled_up"
"""The mark holding the id of the last raw sample rolled up."""

_BUCKETS = (
    "(SELECT DISTINCT account_id, node_name, name, CAST(at / {step} AS INTEGER) * {step} AS at "
    "FROM metric_samples WHERE id > ? AND id <= ? AND at {age} ?) AS b"
)
"""The points of one resolution that the raw samples in an id range fall into."""

_ROLL_UP_SAMPLES = (
    "INSERT OR REPLACE INTO metric_rollups "
    "(account_id, node_name, name, step, at, value, low, high, count) "
    "SELECT s.account_id, s.node_name, s.name, {step}, b.at, "
    "avg(s.value), min(s.value), max(s.value), count(*) "
    f"FROM {_BUCKETS} JOIN metric_samples AS s ON s.account_id = b.account_id "
    "AND s.node_name = b.node_name AND s.at >= b.at AND s.at < b.at + {step} AND s.name = b.name "
    "GROUP BY s.account_id, s.node_name, s.name, b.at"
)

_ROLL_UP_POINTS = (
    "INSERT OR {verb} INTO metric_rollups "
    "(account_id, node_name, name, step, at, value, low, high, count) "
    "SELECT r.account_id, r.node_name, r.name, {step}, b.at, "
    "sum(r.value * r.count) / sum(r.count), min(r.low), max(r.high), sum(r.count) "
    f"FROM {_BUCKETS} JOIN metric_rollups AS r ON r.account_id = b.account_id "
    "AND r.node_name = b.node_name AND r.step = {finer} AND r.at >= b.at "
    "AND r.at < b.at + {step} AND r.name = b.name "
    "GROUP BY r.account_id, r.node_name, r.name, b.at"
)


def _roll_up_batch(conn: sqlite3.Connection, batch: int, finest_kept: float) -> tuple[int, bool]:
    """Roll the next ``batch`` raw samples up into every resolution; (points written, more?).
    Hours are recomputed from their 5-minute points only while those are kept."""
    mark = _mark(conn, _ROLLED_UP_UNTIL)
    count, top = conn.execute(
        "SELECT count(*), max(id) FROM "
        "(SELECT id FROM metric_samples WHERE id > ? ORDER BY id LIMIT ?)",
        (mark, batch),
    ).fetchone()
    if not count:
        return 0, False
    first, *coarser = ROLLUP_STEPS
    sql = _ROLL_UP_SAMPLES.format(step=first, age=">=")
    written = conn.execute(sql, (mark, top, 0.0)).rowcount
    for finer, step in zip(ROLLUP_STEPS, coarser, strict=False):
        # a point whose finer points may be gone already is only filled in, never recomputed
        for verb, age in (("REPLACE", ">="), ("IGNORE", "<")):
            sql = _ROLL_UP_POINTS.format(step=step, finer=finer, verb=verb, age=age)
            written += conn.execute(sql, (mark, top, finest_kept)).rowcount
    conn.execute(
        "INSERT INTO marks (name, value) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (_ROLLED_UP_UNTIL, top),
    )
    return written, count == batch


def _mark(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT value FROM marks WHERE name = ?", (name,)).fetchone()
    return 0 if row is None else int(row[0])


def _purge_metrics(conn: sqlite3.Connection, cutoffs: Sequence[tuple[int, float]]) -> int:
    dropped = 0
    for step, before in cutoffs:
        if step:
            sql, args = "DELETE FROM metric_rollups WHERE step = ? AND at < ?", (step, before)
        else:
            # never past the roll-up mark, nor the newest sample: ids must not be reused
            sql = "DELETE FROM metric_samples WHERE at < ? AND id < ?"
            args = (before, _mark(conn, _ROLLED_UP_UNTIL))
        dropped += conn.execute(sql, args).rowcount
    return dropped


def _upsert_heartbeat(conn: sqlite3.Connection, beat: Heartbeat) -> None:
    conn.execute(
        "INSERT INTO herk_nodes "
        "(name, workers, busy, inflight, version, started_at, draining, last_seen, held, "
        "interval) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
        "workers = excluded.workers, busy = excluded.busy, inflight = excluded.inflight, "
        "version = excluded.version, started_at = excluded.started_at, "
        "draining = excluded.draining, last_seen = excluded.last_seen, "
        "held = excluded.held, interval = excluded.interval "
        "WHERE excluded.last_seen >= herk_nodes.last_seen",
        (
            beat.herk,
            beat.workers,
            beat.busy,
            _json(beat.inflight),
            beat.version,
            beat.started_at,
            int(beat.draining),
            beat.at or time.time(),
            msgspec.json.encode(beat.jobs),
            beat.interval,
        ),
    )


def _purge(conn: sqlite3.Connection, lines_before: float, jobs_before: float) -> tuple[int, int]:
    lines = conn.execute("DELETE FROM log_lines WHERE at < ?", (lines_before,)).rowcount
    old = "SELECT id FROM jobs WHERE state NOT IN (?, ?) AND updated_at < ?"
    args = (*_UNFINISHED, jobs_before)
    lines += conn.execute(f"DELETE FROM log_lines WHERE job_id IN ({old})", args).rowcount
    conn.execute(f"DELETE FROM job_history WHERE job_id IN ({old})", args)
    conn.execute(f"DELETE FROM outbox WHERE job_id IN ({old})", args)
    jobs = conn.execute(f"DELETE FROM jobs WHERE id IN ({old})", args).rowcount
    return lines, jobs
