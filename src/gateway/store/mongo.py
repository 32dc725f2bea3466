"""The MongoDB store, through PyMongo's asyncio client (``AsyncMongoClient``).

Writes that touch several documents (a launch, a status event, a cancel) run in a transaction,
so MongoDB must be a replica set (a one-node replica set will do). Log-line cursors come from a
counter document and are taken under a lock, so they grow in commit order within this gateway
process (run one gateway per database, as with SQLite). Search is by words: each line keeps its
lower-cased words in an indexed array and a query asks for all of them, which is the whole-word
contract of the SQLite FTS5 index (a ``$text`` index would stem and drop stop words, and the
SecantusDB server the contract suite runs on has none). Retention: TTL indexes expire log lines
and finished jobs, and :meth:`purge` applies the same rule at once. Metric samples carry a
``rolled`` flag until :meth:`roll_up` has folded them into their 5-minute and hourly points.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, ParamSpec, TypeVar

import msgspec
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReplaceOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from gateway import lifecycle
from gateway.rules import jobs as job_rules
from gateway.rules import nodes as node_rules
from gateway.rules import retention
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

P = ParamSpec("P")
T = TypeVar("T")
Doc = dict[str, Any]

DUPLICATE_KEY: Final = 11000
WORD: Final = re.compile(r"\w+")
_UNFINISHED: Final = [JobState.QUEUED.value, JobState.RUNNING.value]
_DELETED: Final = lifecycle.NodeStatus.DELETED.value


def _mapped(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Driver failures become :class:`StoreError` (a 503), as the interface promises."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except PyMongoError as exc:
            raise StoreError(f"MongoDB: {exc}") from exc

    return wrapper


def words(text: str) -> list[str]:
    """The searchable words of a line or a query: lower case, letters and digits."""
    return sorted(set(WORD.findall(text.lower())))


def _date(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC)


class MongoStore(Store):
    def __init__(self, url: str, retention: Retention | None = None) -> None:
        super().__init__()
        self.url = url
        self.retention = retention or Retention()
        self._client: AsyncMongoClient[Doc] | None = None
        self._log_ids = asyncio.Lock()

    @property
    def _db(self) -> Any:
        if self._client is None:
            raise StoreError("store is not open")
        return self._client.get_default_database("megam")

    @_mapped
    async def open(self) -> None:
        self._client = AsyncMongoClient(self.url, tz_aware=True, serverSelectionTimeoutMS=5000)
        await self._client.admin.command("ping")
        await self._create_indexes()

    async def _create_indexes(self) -> None:
        db = self._db
        await db.accounts.create_index("email", unique=True)
        await db.predef_clouds.create_index([("account_id", 1), ("name", 1)], unique=True)
        await db.nodes.create_index("live_name", unique=True)
        await db.nodes.create_index([("account_id", 1), ("name", 1), ("created_at", 1)])
        await db.jobs.create_index([("account_id", 1), ("created_at", 1)])
        await db.jobs.create_index([("node_id", 1), ("created_at", 1)])
        await db.jobs.create_index("state")
        await db.jobs.create_index(
            "finished_date", expireAfterSeconds=int(self.retention.job_seconds)
        )
        await db.outbox.create_index("due_at")
        await db.log_lines.create_index([("job_id", 1), ("attempt", 1), ("seq", 1)], unique=True)
        await db.log_lines.create_index([("node_id", 1), ("_id", 1)])
        await db.log_lines.create_index([("account_id", 1), ("words", 1)])
        await db.log_lines.create_index(
            "at_date", expireAfterSeconds=int(self.retention.log_seconds)
        )
        await db.metric_samples.create_index(
            [("account_id", 1), ("node_name", 1), ("name", 1), ("at", 1)], unique=True
        )
        await db.metric_samples.create_index([("rolled", 1), ("_id", 1)])
        await db.metric_samples.create_index("at")
        await db.metric_rollups.create_index(
            [("account_id", 1), ("node_name", 1), ("step", 1), ("at", 1), ("name", 1)],
            unique=True,
        )
        await db.metric_rollups.create_index([("step", 1), ("at", 1)])
        await db.documents.create_index([("account_id", 1), ("kind", 1), ("name", 1)], unique=True)
        await db.documents.create_index([("account_id", 1), ("kind", 1), ("node_id", 1)])

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    @_mapped
    async def ping(self) -> None:
        await self._db.command("ping")

    async def _transaction(self, work: Callable[[_Tx], Awaitable[T]]) -> T:
        """``work`` in one transaction; once it is committed, the listeners hear which nodes it
        wrote (every write to a node or a job goes through one: :meth:`_save`, the inserts)."""
        if self._client is None:
            raise StoreError("store is not open")
        async with self._client.start_session() as session:
            tx = _Tx(session)
            async with await session.start_transaction():
                result = await work(tx)
        self._committed(Written(nodes=frozenset(tx.written)))
        return result

    # accounts -------------------------------------------------------------------------------

    @_mapped
    async def add_account(self, account: Account) -> None:
        try:
            await self._db.accounts.insert_one(_account_doc(account))
        except DuplicateKeyError:
            raise Conflict(f"an account with email {account.email} already exists") from None

    @_mapped
    async def account_by_email(self, email: str) -> Account | None:
        found = await self._db.accounts.find_one({"email": email})
        return None if found is None else _account(found)

    # predef clouds --------------------------------------------------------------------------

    @_mapped
    async def add_predef_cloud(self, cloud: PredefCloud) -> None:
        try:
            await self._db.predef_clouds.insert_one(_with_id(cloud))
        except DuplicateKeyError:
            raise Conflict(f"you already have a predef cloud named {cloud.name!r}") from None

    @_mapped
    async def predef_cloud(self, account_id: str, name: str) -> PredefCloud | None:
        found = await self._db.predef_clouds.find_one({"account_id": account_id, "name": name})
        return None if found is None else _record(found, PredefCloud)

    @_mapped
    async def predef_clouds(self, account_id: str) -> list[PredefCloud]:
        cursor = self._db.predef_clouds.find({"account_id": account_id}).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)]
        )
        return [_record(doc, PredefCloud) async for doc in cursor]

    # nodes and jobs -------------------------------------------------------------------------

    @_mapped
    async def add_launches(self, launches: Sequence[Launch]) -> None:
        async def write(tx: _Tx) -> None:
            for launch in launches:
                tx.wrote(launch.node.account_id, launch.node.name)
                try:
                    await self._db.nodes.insert_one(_node_doc(launch.node), session=tx.session)
                except DuplicateKeyError:
                    raise Conflict(f"a node named {launch.node.name} already exists") from None
                await self._insert_job(launch.job, launch.outbox, tx)

        await self._transaction(write)

    @_mapped
    async def add_request(self, job: Job, outbox: OutboxEntry) -> None:
        async def write(tx: _Tx) -> None:
            node = await self._load_node(job.node_id, tx.session, job.account_id)
            pending = await self._unfinished_job(job.node_id, tx.session, job.req_type)
            node_rules.admit_request(job, node, pending)
            await self._insert_job(job, outbox, tx)

        await self._transaction(write)

    async def _insert_job(self, job: Job, outbox: OutboxEntry, tx: _Tx) -> None:
        tx.wrote(job.account_id, job.node_name)  # a new job's node has the name it was given
        await self._db.jobs.insert_one(_job_doc(job), session=tx.session)
        await self._db.outbox.insert_one(
            {**_with_id(outbox, "job_id"), "last_error": ""}, session=tx.session
        )

    @_mapped
    async def node(self, account_id: str, name: str) -> Node | None:
        found = await self._find_node(account_id, name)
        return None if found is None else _node(found)

    async def _find_node(
        self, account_id: str, name: str, session: AsyncClientSession | None = None
    ) -> Doc | None:
        """The live node of that name, else the latest deleted one."""
        live = await self._db.nodes.find_one(
            {"account_id": account_id, "name": name, "status": {"$ne": _DELETED}}, session=session
        )
        if live is not None:
            return live
        return await self._db.nodes.find_one(
            {"account_id": account_id, "name": name},
            sort=[("created_at", DESCENDING)],
            session=session,
        )

    @_mapped
    async def node_with_jobs(self, account_id: str, name: str) -> tuple[Node, list[Job]] | None:
        found = await self._find_node(account_id, name)
        if found is None:
            return None
        return _node(found), await self._jobs({"account_id": account_id, "node_id": found["_id"]})

    @_mapped
    async def node_by_id(self, account_id: str, node_id: str) -> Node | None:
        found = await self._db.nodes.find_one({"_id": node_id, "account_id": account_id})
        return None if found is None else _node(found)

    @_mapped
    async def nodes(self, account_id: str) -> list[Node]:
        cursor = self._db.nodes.find({"account_id": account_id}).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)]
        )
        return [_node(doc) async for doc in cursor]

    @_mapped
    async def job(self, account_id: str, job_id: str) -> Job | None:
        found = await self._db.jobs.find_one({"_id": job_id, "account_id": account_id})
        return None if found is None else _job(found)

    @_mapped
    async def jobs(self, account_id: str, *, node_id: str | None = None) -> list[Job]:
        where: Doc = {"account_id": account_id}
        if node_id is not None:
            where["node_id"] = node_id
        return await self._jobs(where)

    async def _jobs(self, where: Doc) -> list[Job]:
        cursor = self._db.jobs.find(where).sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        return [_job(doc) async for doc in cursor]

    @_mapped
    async def update_node(self, account_id: str, name: str, change: NodeChange, at: float) -> Node:
        async def write(tx: _Tx) -> Node:
            found = await self._find_node(account_id, name, tx.session)
            node = None if found is None else _node(found)
            busy = node is not None and await self._unfinished_job(node.id, tx.session) is not None
            updated = node_rules.updated(node, name, change, busy=busy, at=at)
            tx.wrote(account_id, name)  # the old name's view, besides the new one's
            await self._save(Changes(nodes=(updated,)), tx)
            return updated

        return await self._transaction(write)

    @_mapped
    async def running_jobs(self) -> list[Job]:
        return await self._jobs({"state": JobState.RUNNING.value})

    @_mapped
    async def cancel_job(
        self, account_id: str, job_id: str, requested_by: str, at: float
    ) -> CancelOutcome | None:
        async def write(tx: _Tx) -> CancelOutcome | None:
            job = await self._load_job(job_id, tx.session, account_id)
            if job is None:
                return None
            node = await self._load_node(job.node_id, tx.session)
            assert node is not None  # a job's node is never dropped
            entry = await self._db.outbox.find_one({"_id": job_id}, session=tx.session)
            cancel = job_rules.cancel(
                job, node, in_outbox=entry is not None, requested_by=requested_by, at=at
            )
            await self._save(cancel.changes, tx)
            return cancel.outcome

        return await self._transaction(write)

    # the repository: records loaded and saved inside a transaction --------------------------

    async def _load_job(
        self, job_id: str, session: AsyncClientSession, account_id: str | None = None
    ) -> Job | None:
        found = await self._load(self._db.jobs, job_id, session, account_id)
        return None if found is None else _job(found)

    async def _load_node(
        self, node_id: str, session: AsyncClientSession, account_id: str | None = None
    ) -> Node | None:
        found = await self._load(self._db.nodes, node_id, session, account_id)
        return None if found is None else _node(found)

    async def _load(
        self, collection: Any, key: str, session: AsyncClientSession, account_id: str | None
    ) -> Doc | None:
        """The document ``key`` of ``collection`` (of ``account_id`` only, when given)."""
        owner: Doc = {} if account_id is None else {"account_id": account_id}
        found: Doc | None = await collection.find_one({"_id": key, **owner}, session=session)
        return found

    async def _unfinished_job(
        self, node_id: str, session: AsyncClientSession, req_type: str | None = None
    ) -> str | None:
        """The id of one of the node's unfinished jobs (of ``req_type`` if given), else None."""
        where: Doc = {"node_id": node_id, "state": {"$in": _UNFINISHED}}
        if req_type is not None:
            where["req_type"] = req_type
        found = await self._db.jobs.find_one(where, {"_id": 1}, session=session)
        return None if found is None else str(found["_id"])

    async def _save(self, changes: Changes, tx: _Tx) -> None:
        """Write what a rule decided: jobs' fields and new history entries, nodes, dropped
        outbox entries."""
        session = tx.session
        for change in changes.jobs:
            job = change.job
            # rules change unfinished jobs only, and a node with one is never renamed
            tx.wrote(job.account_id, job.node_name)
            fields = _job_fields(job) | _finished(JobState(job.state), job.updated_at)
            update: Doc = {"$set": fields}
            if change.entry is not None:
                update["$push"] = {"history": msgspec.to_builtins(change.entry)}
            await self._db.jobs.update_one({"_id": job.id}, update, session=session)
        for node in changes.nodes:
            tx.wrote(node.account_id, node.name)
            try:
                await self._db.nodes.replace_one({"_id": node.id}, _node_doc(node), session=session)
            except DuplicateKeyError:
                raise Conflict(f"a node named {node.name} already exists") from None
        if changes.dropped_outbox:
            await self._db.outbox.delete_many(
                {"_id": {"$in": list(changes.dropped_outbox)}}, session=session
            )

    # documents ------------------------------------------------------------------------------

    @_mapped
    async def add_document(self, document: Document) -> None:
        try:
            await self._db.documents.insert_one(_with_id(document))
        except DuplicateKeyError:
            raise Conflict(f"you already have a {document.kind} named {document.name!r}") from None

    @_mapped
    async def document(self, account_id: str, kind: str, key: str) -> Document | None:
        where = {"account_id": account_id, "kind": kind}
        found = await self._db.documents.find_one({**where, "_id": key})
        found = found or await self._db.documents.find_one({**where, "name": key})
        return None if found is None else _record(found, Document)

    @_mapped
    async def documents(
        self, account_id: str, kind: str, *, node_id: str | None = None
    ) -> list[Document]:
        where: Doc = {"account_id": account_id, "kind": kind}
        if node_id is not None:
            where["node_id"] = node_id
        cursor = self._db.documents.find(where).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)]
        )
        return [_record(doc, Document) async for doc in cursor]

    @_mapped
    async def replace_document(self, document: Document) -> bool:
        result = await self._db.documents.update_one(
            {"_id": document.id, "account_id": document.account_id, "kind": document.kind},
            {
                "$set": {
                    "body": document.body,
                    "secret_encrypted": document.secret_encrypted,
                    "updated_at": document.updated_at,
                }
            },
        )
        return result.matched_count > 0

    # outbox ---------------------------------------------------------------------------------

    @_mapped
    async def claim_outbox(self, now: float, lease: float, limit: int) -> list[OutboxEntry]:
        claimed: list[OutboxEntry] = []
        # one atomic claim per entry: two gateways never take the same one
        while len(claimed) < limit:
            found = await self._db.outbox.find_one_and_update(
                {"due_at": {"$lte": now}},
                {"$set": {"due_at": now + lease}},
                sort=[("due_at", ASCENDING), ("_id", ASCENDING)],
                return_document=ReturnDocument.AFTER,
            )
            if found is None:
                break
            claimed.append(_outbox(found))
        return claimed

    @_mapped
    async def outbox_sent(self, job_id: str, at: float) -> None:
        async def write(tx: _Tx) -> None:
            entry = await self._db.outbox.find_one({"_id": job_id}, session=tx.session)
            failures = entry["attempts"] if entry else 0
            job = await self._load_job(job_id, tx.session)
            await self._save(job_rules.published(job_id, job, failures, at), tx)

        await self._transaction(write)

    @_mapped
    async def outbox_failed(self, job_id: str, error: str, retry_at: float, at: float) -> None:
        async def write(tx: _Tx) -> None:
            entry = await self._db.outbox.find_one_and_update(
                {"_id": job_id},
                {"$inc": {"attempts": 1}, "$set": {"due_at": retry_at, "last_error": error}},
                session=tx.session,
            )
            if entry is None:
                return  # published meanwhile by someone else
            job = await self._load_job(job_id, tx.session)
            first = entry["attempts"] == 0
            change = job_rules.publish_failed(job, error, first=first, at=at)
            if change is not None:
                await self._save(Changes(jobs=(change,)), tx)

        await self._transaction(write)

    @_mapped
    async def outbox_size(self) -> int:
        return await self._db.outbox.count_documents({})

    # events from herk -----------------------------------------------------------------------

    @_mapped
    async def apply_status(self, event: StatusEvent, *, presumed: bool = False) -> EventOutcome:
        async def write(tx: _Tx) -> EventOutcome:
            job = await self._load_job(event.job_id, tx.session)
            node = None if job is None else await self._load_node(job.node_id, tx.session)
            found = None if job is None or node is None else (job, node)
            decision = job_rules.status_event(found, event, _now(), presumed=presumed)
            await self._save(decision.changes, tx)
            return decision.outcome

        return await self._transaction(write)

    @_mapped
    async def add_log_lines(self, event: LogEvent) -> EventOutcome:
        found = await self._db.jobs.find_one({"_id": event.job_id})
        job = None if found is None else _job(found)
        owner = job_rules.owned(job, event.job_id, event.account, event.node)
        if isinstance(owner, EventOutcome):
            return owner
        node_id = owner.node_id
        async with self._log_ids:  # cursors grow in commit order
            counter = await self._db.counters.find_one_and_update(
                {"_id": "log_lines"},
                {"$inc": {"next": len(event.lines)}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            first = counter["next"] - len(event.lines) + 1
            docs = [
                {
                    "_id": first + i,
                    "account_id": event.account,
                    "node_id": node_id,
                    "job_id": event.job_id,
                    "attempt": event.attempt,
                    "seq": line.seq,
                    "stream": line.stream,
                    "text": line.text,
                    "at": line.at,
                    "at_date": _date(line.at),
                    "words": words(line.text),
                }
                for i, line in enumerate(event.lines)
            ]
            inserted = await _insert_new(self._db.log_lines, docs)
        return EventOutcome(
            applied=inserted > 0,
            why="" if inserted else "duplicate",
            node_id=node_id,
            stored=inserted,
        )

    @_mapped
    async def add_metrics(self, event: MetricEvent) -> EventOutcome:
        known = await self._db.nodes.find_one(
            {"account_id": event.account, "name": event.node},
            sort=[("created_at", DESCENDING)],
        )
        if known is None:
            return EventOutcome(applied=False, why="unknown node")
        at = event.at or _now()
        docs = [
            {
                "account_id": event.account,
                "node_name": event.node,
                "name": n,
                "value": v,
                "at": at,
                "rolled": False,
            }
            for n, v in event.samples.items()
        ]
        inserted = await _insert_new(self._db.metric_samples, docs)
        return EventOutcome(
            applied=inserted > 0,
            why="" if inserted else "duplicate",
            node_id=known["_id"],
            stored=inserted,
        )

    @_mapped
    async def record_heartbeat(self, heartbeat: Heartbeat) -> None:
        seen = heartbeat.at or _now()
        doc = {
            "workers": heartbeat.workers,
            "busy": heartbeat.busy,
            "inflight": heartbeat.inflight,
            "version": heartbeat.version,
            "started_at": heartbeat.started_at,
            "draining": heartbeat.draining,
            "last_seen": seen,
            "held": msgspec.to_builtins(heartbeat.jobs),
            "interval": heartbeat.interval,
        }
        # an older beat than the stored one matches nothing, and its upsert hits the _id
        with contextlib.suppress(DuplicateKeyError):
            await self._db.herk_nodes.update_one(
                {"_id": heartbeat.herk, "last_seen": {"$lte": seen}}, {"$set": doc}, upsert=True
            )

    # reads ----------------------------------------------------------------------------------

    @_mapped
    async def _log_lines(self, account_id: str, node_id: str, window: LineWindow) -> list[LogLine]:
        where: Doc = {"account_id": account_id, "node_id": node_id}
        if window.job_id is not None:
            where["job_id"] = window.job_id
        if window.after is not None:
            where["_id"] = {"$gt": window.after}
            cursor = self._db.log_lines.find(where).sort("_id", ASCENDING).limit(window.count)
            return [_line(doc) async for doc in cursor]
        if window.count <= 0:
            return []  # a limit of 0 would mean none to MongoDB
        cursor = self._db.log_lines.find(where).sort("_id", DESCENDING).limit(window.count)
        return [_line(doc) async for doc in cursor][::-1]

    @_mapped
    async def search_logs(self, account_id: str, query: LogQuery) -> list[LogHit]:
        wanted = sorted({w for word in query.words for w in words(word)})
        if not wanted:
            return []
        where: Doc = {"account_id": account_id, "words": {"$all": wanted}}
        if query.node_name is not None or query.job_state is not None:
            jobs_where: Doc = {"account_id": account_id}
            if query.node_name is not None:
                jobs_where["node_name"] = query.node_name
            if query.job_state is not None:
                jobs_where["state"] = query.job_state
            ids = [doc["_id"] async for doc in self._db.jobs.find(jobs_where, {"_id": 1})]
            where["job_id"] = {"$in": ids}
        if query.job_id is not None:
            where.setdefault("$and", []).append({"job_id": query.job_id})
        span: Doc = {}
        if query.since is not None:
            span["$gte"] = query.since
        if query.until is not None:
            span["$lt"] = query.until
        if span:
            where["at"] = span
        cursor = self._db.log_lines.find(where).sort("_id", DESCENDING).limit(query.limit)
        lines = [_line(doc) async for doc in cursor]
        job_ids = list({line.job_id for line in lines})
        jobs = {
            doc["_id"]: doc
            async for doc in self._db.jobs.find(
                {"_id": {"$in": job_ids}}, {"node_name": 1, "state": 1}
            )
        }
        return [
            LogHit(
                line=line,
                node_name=jobs[line.job_id]["node_name"],
                job_state=jobs[line.job_id]["state"],
            )
            for line in lines
            if line.job_id in jobs
        ]

    @_mapped
    async def _metrics(
        self, account_id: str, node_name: str, query: MetricQuery
    ) -> list[MetricSample]:
        step = query.step
        where: Doc = {"account_id": account_id, "node_name": node_name}
        if query.name is not None:
            where["name"] = query.name
        if step:
            # a point covers [at, at + step): the one holding ``since`` is in
            where |= {"step": step, "at": {"$gt": query.since - step}}
            cursor = self._db.metric_rollups.find(where).sort(
                [("at", DESCENDING), ("name", DESCENDING)]
            )
        else:
            where["at"] = {"$gte": query.since}
            cursor = self._db.metric_samples.find(where).sort(
                [("at", DESCENDING), ("_id", DESCENDING)]
            )
        samples = [_metric_sample(doc, step) async for doc in cursor.limit(query.limit)]
        return sorted(samples, key=lambda s: (s.at, s.name))

    @_mapped
    async def roll_up(self, now: float) -> int:
        finest_kept = now - self.retention.keeps(ROLLUP_STEPS[0])
        written = 0
        while True:
            cursor = self._db.metric_samples.find(
                {"rolled": False}, {"account_id": 1, "node_name": 1, "name": 1, "at": 1}
            )
            batch = [doc async for doc in cursor.sort("_id", ASCENDING).limit(ROLLUP_BATCH)]
            if not batch:
                return written
            for finer, step in zip((0, *ROLLUP_STEPS), ROLLUP_STEPS, strict=False):
                # a point whose finer points may be gone already is only filled in
                fresh = [doc for doc in batch if not finer or doc["at"] >= finest_kept]
                old = [doc for doc in batch if finer and doc["at"] < finest_kept]
                written += await self._recompute(_buckets(fresh, step), step, finer)
                written += await self._recompute(_buckets(old, step), step, finer, fill_only=True)
            ids = [doc["_id"] for doc in batch]
            await self._db.metric_samples.update_many(
                {"_id": {"$in": ids}}, {"$set": {"rolled": True}}
            )
            if len(batch) < ROLLUP_BATCH:
                return written

    async def _recompute(
        self, buckets: dict[_Series, set[int]], step: int, finer: int, *, fill_only: bool = False
    ) -> int:
        """Rewrite (or with ``fill_only``, add when missing) the ``step`` points of ``buckets``
        from the ``finer`` points they hold."""
        writes: list[ReplaceOne[Doc] | UpdateOne] = []
        for series, starts in buckets.items():
            account_id, node_name, name = series
            where: Doc = {
                "account_id": account_id,
                "node_name": node_name,
                "name": name,
                "at": {"$gte": min(starts), "$lt": max(starts) + step},
            }
            source = self._db.metric_rollups if finer else self._db.metric_samples
            if finer:
                where["step"] = finer
            folds: dict[int, _Fold] = {}
            async for doc in source.find(where):
                start = _bucket_of(doc["at"], step)
                if start in starts:
                    folds.setdefault(start, _Fold()).add(doc)
            for start, fold in folds.items():
                key = {**dict(zip(_SERIES, series, strict=True)), "step": step, "at": start}
                if fill_only:
                    writes.append(UpdateOne(key, {"$setOnInsert": fold.point()}, upsert=True))
                else:
                    writes.append(ReplaceOne(key, key | fold.point(), upsert=True))
        if writes:
            await self._db.metric_rollups.bulk_write(writes, ordered=False)
        return len(writes)

    @_mapped
    async def herk_nodes(self) -> list[HerkNode]:
        cursor = self._db.herk_nodes.find({}).sort("_id", ASCENDING)
        return [
            HerkNode(
                name=doc["_id"],
                workers=doc["workers"],
                busy=doc["busy"],
                inflight=tuple(doc["inflight"]),
                version=doc["version"],
                started_at=doc["started_at"],
                draining=doc["draining"],
                last_seen=doc["last_seen"],
                held=tuple(msgspec.convert(doc.get("held", []), list[HeldJob])),
                interval=doc.get("interval", 0.0),
            )
            async for doc in cursor
        ]

    @_mapped
    async def purge(self, now: float) -> Purged:
        await self.roll_up(now)
        cut = retention.cutoffs(self.retention, now)
        lines = await self._db.log_lines.delete_many({"at": {"$lt": cut.lines_before}})
        old_jobs = [
            doc["_id"]
            async for doc in self._db.jobs.find(
                {"finished_at": {"$lt": cut.jobs_before}}, {"_id": 1}
            )
        ]
        their_lines = await self._db.log_lines.delete_many({"job_id": {"$in": old_jobs}})
        jobs = await self._db.jobs.delete_many({"_id": {"$in": old_jobs}})
        (_, raw_before), *points_before = cut.metrics_before
        samples = await self._db.metric_samples.delete_many(
            {"at": {"$lt": raw_before}, "rolled": True}
        )
        dropped = samples.deleted_count
        for step, before in points_before:
            points = await self._db.metric_rollups.delete_many(
                {"step": step, "at": {"$lt": before}}
            )
            dropped += points.deleted_count
        if jobs.deleted_count:
            self._committed(Written(everything=True))  # which nodes lost jobs is not read back
        return Purged(
            lines=lines.deleted_count + their_lines.deleted_count,
            jobs=jobs.deleted_count,
            samples=dropped,
        )


class _Tx:
    """One transaction's session, and the nodes it wrote, as ``(account_id, name)``."""

    __slots__ = ("session", "written")

    def __init__(self, session: AsyncClientSession) -> None:
        self.session = session
        self.written: set[tuple[str, str]] = set()

    def wrote(self, account_id: str, name: str) -> None:
        self.written.add((account_id, name))


# metric roll-ups ------------------------------------------------------------------------------

ROLLUP_BATCH: Final = 20_000
"""Raw samples folded per pass of the roll-up loop."""

_SERIES: Final = ("account_id", "node_name", "name")
_Series = tuple[str, str, str]


class _Fold:
    """Mean, least, most and count of the points that fall into one coarser point."""

    def __init__(self) -> None:
        self.total, self.count = 0.0, 0
        self.low, self.high = float("inf"), float("-inf")

    def add(self, doc: Doc) -> None:
        count = doc.get("count", 1)  # a raw sample counts once
        self.total += doc["value"] * count
        self.count += count
        self.low = min(self.low, doc.get("low", doc["value"]))
        self.high = max(self.high, doc.get("high", doc["value"]))

    def point(self) -> Doc:
        mean = self.total / self.count
        return {"value": mean, "low": self.low, "high": self.high, "count": self.count}


def _bucket_of(at: float, step: int) -> int:
    return int(at // step) * step


def _buckets(docs: list[Doc], step: int) -> dict[_Series, set[int]]:
    """The ``step`` points each sample's series has new samples in."""
    buckets: dict[_Series, set[int]] = {}
    for doc in docs:
        series = (doc["account_id"], doc["node_name"], doc["name"])
        buckets.setdefault(series, set()).add(_bucket_of(doc["at"], step))
    return buckets


def _metric_sample(doc: Doc, step: int) -> MetricSample:
    if not step:
        return MetricSample(name=doc["name"], value=doc["value"], at=doc["at"])
    return MetricSample(
        name=doc["name"],
        value=doc["value"],
        at=doc["at"],
        step=step,
        low=doc["low"],
        high=doc["high"],
        count=doc["count"],
    )


# documents <-> records ------------------------------------------------------------------------


async def _insert_new(collection: Any, docs: list[Doc]) -> int:
    """Insert, skipping documents a unique index already holds; how many were new."""
    if not docs:
        return 0
    try:
        result = await collection.insert_many(docs, ordered=False)
        return len(result.inserted_ids)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        return int(exc.details.get("nInserted", 0))


def _now() -> float:
    return datetime.datetime.now(datetime.UTC).timestamp()


def _finished(state: JobState, at: float) -> Doc:
    """Fields that start a finished job's retention clock (the TTL index reads the date)."""
    return {"finished_at": at, "finished_date": _date(at)} if state.terminal else {}


def _live_name(name: str, status: str, node_id: str) -> str:
    """Unique among live nodes: a deleted node frees its name by taking one no one can ask for."""
    return f"{name}#deleted#{node_id}" if status == _DELETED else name


def _with_id(record: msgspec.Struct, field: str = "id") -> Doc:
    doc = msgspec.to_builtins(record, builtin_types=(bytes,))
    doc["_id"] = doc.pop(field)
    return doc


def _record(doc: Doc, kind: type[T], field: str = "id") -> T:
    fields = {k: v for k, v in doc.items() if k != "_id"}
    fields[field] = doc["_id"]
    return msgspec.convert(fields, kind, builtin_types=(bytes,))


def _account_doc(account: Account) -> Doc:
    return _with_id(account)


def _account(doc: Doc) -> Account:
    return _record(doc, Account)


def _node_doc(node: Node) -> Doc:
    doc = _with_id(node)
    doc["live_name"] = _live_name(node.name, node.status, node.id)
    return doc


def _node(doc: Doc) -> Node:
    fields = {k: v for k, v in doc.items() if k not in ("_id", "live_name")}
    fields["id"] = doc["_id"]
    fields["cloud"] = msgspec.convert(fields["cloud"], CloudTarget)
    return msgspec.convert(fields, Node)


def _job_doc(job: Job) -> Doc:
    return _with_id(job) | _finished(JobState(job.state), job.updated_at)


def _job_fields(job: Job) -> Doc:
    """The fields of a stored job that change (its history only grows, by ``$push``)."""
    return {
        "state": job.state,
        "reason": job.reason,
        "exit_code": job.exit_code,
        "attempt": job.attempt,
        "seq": job.seq,
        "herk": job.herk,
        "published": job.published,
        "updated_at": job.updated_at,
        "presumed": job.presumed,
    }


def _job(doc: Doc) -> Job:
    fields = {k: v for k, v in doc.items() if k not in ("_id", "finished_at", "finished_date")}
    fields["id"] = doc["_id"]
    return msgspec.convert(fields, Job)


def _outbox(doc: Doc) -> OutboxEntry:
    return OutboxEntry(
        job_id=doc["_id"],
        routing_key=doc["routing_key"],
        body=bytes(doc["body"]),
        correlation_id=doc["correlation_id"],
        attempts=doc["attempts"],
        due_at=doc["due_at"],
    )


def _line(doc: Doc) -> LogLine:
    return LogLine(
        id=doc["_id"],
        job_id=doc["job_id"],
        attempt=doc["attempt"],
        seq=doc["seq"],
        stream=doc["stream"],
        text=doc["text"],
        at=doc["at"],
    )
