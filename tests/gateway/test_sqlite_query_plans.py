"""The SQLite store's hot reads and writes are O(log n): every statement they run searches an
index (EXPLAIN QUERY PLAN), none scans a table, whatever else the account or the fleet holds;
and the planner's statistics are refreshed when the store opens."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.store.records import Account, Launch
from gateway.store.sqlite import SqliteStore
from tests.gateway.test_store_contract import account, launch, log_event, status

NODES = 200


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, Account, list[Launch]]]:
    """One account with many nodes (each with a job and lines) and another account beside it."""
    store = SqliteStore(tmp_path / "plans.db")
    await store.open()
    owner, other = await account(store), await account(store)
    mine = [launch(owner, f"n{i}.local") for i in range(NODES)]
    await store.add_launches(mine)
    await store.add_launches([launch(other, f"o{i}.local") for i in range(NODES)])
    for each in mine[:20]:
        await store.add_log_lines(log_event(each, ["a line", "another"]))
    yield store, owner, mine
    await store.close()


async def traced(store: SqliteStore, work: Callable[[], Awaitable[object]]) -> list[str]:
    """The statements ``work`` ran on any of the store's connections, values filled in."""
    pools = [pool for pool in (store._readers, store._writer) if pool is not None]
    readers = store._readers_count
    together = threading.Barrier(readers)  # each reader thread holds one: all are connected
    assert store._readers is not None
    await asyncio.gather(
        *(store._readers.run(lambda _: together.wait(timeout=10)) for _ in range(readers))
    )
    statements: list[str] = []
    connections = [conn for pool in pools for conn in pool._opened]
    for conn in connections:
        conn.set_trace_callback(statements.append)
    try:
        await work()
    finally:
        for conn in connections:
            conn.set_trace_callback(None)
    # trigger bodies are traced as comments ("-- TRIGGER …"); their statements search by key
    return [s for s in statements if not s.startswith(("BEGIN", "COMMIT", "ROLLBACK", "--"))]


def scans(db: Path, statements: list[str]) -> list[str]:
    """Each table scan (``SCAN <table>``) in the plans of ``statements``, with its statement.
    Not counted: scans of a subquery's result (bounded by its LIMIT), and of the writer's
    per-transaction record of written nodes (``temp.written``), as large as one transaction."""
    found = []
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TEMP TABLE written (account_id TEXT, name TEXT)")
        for statement in statements:
            for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}"):
                detail = row[3]
                bounded = detail.startswith("SCAN (subquery") or "written" in detail
                if detail.startswith("SCAN") and not bounded:
                    found.append(f"{detail}: {statement[:120]}")
    return found


HotPath = Callable[[SqliteStore, Account, list[Launch]], Awaitable[object]]


async def _node_with_jobs(store: SqliteStore, owner: Account, mine: list[Launch]) -> object:
    return await store.node_with_jobs(owner.id, mine[7].node.name)


async def _node_jobs(store: SqliteStore, owner: Account, mine: list[Launch]) -> object:
    return await store.jobs(owner.id, node_id=mine[7].node.id)


async def _job(store: SqliteStore, owner: Account, mine: list[Launch]) -> object:
    return await store.job(owner.id, mine[7].job.id)


async def _log_tail(store: SqliteStore, owner: Account, mine: list[Launch]) -> object:
    return await store.log_lines(owner.id, mine[7].node.id, tail=100)


async def _log_after(store: SqliteStore, owner: Account, mine: list[Launch]) -> object:
    return await store.log_lines(owner.id, mine[7].node.id, after=1, limit=100)


async def _status(store: SqliteStore, owner: Account, mine: list[Launch]) -> object:
    return await store.apply_status(status(mine[7], "running", seq=1))


async def _lines(store: SqliteStore, owner: Account, mine: list[Launch]) -> object:
    return await store.add_log_lines(log_event(mine[8], ["more"], first=5))


async def _cancel(store: SqliteStore, owner: Account, mine: list[Launch]) -> object:
    return await store.cancel_job(owner.id, mine[9].job.id, "ann@example.com", time.time())


async def _published(store: SqliteStore, owner: Account, mine: list[Launch]) -> object:
    return await store.outbox_sent(mine[10].job.id, time.time())


async def _running(store: SqliteStore, owner: Account, mine: list[Launch]) -> object:
    return await store.running_jobs()


HOT_PATHS: dict[str, HotPath] = {
    "a node with its jobs": _node_with_jobs,
    "a node's jobs": _node_jobs,
    "a job": _job,
    "a node's log tail": _log_tail,
    "a node's lines after a cursor": _log_after,
    "a status event": _status,
    "a log event": _lines,
    "a cancel": _cancel,
    "a confirmed publish": _published,
    "the reconciler's running jobs": _running,
}


@pytest.mark.parametrize("path", sorted(HOT_PATHS))
async def test_a_hot_path_searches_indexes_and_scans_no_table(
    fleet: tuple[SqliteStore, Account, list[Launch]], path: str
) -> None:
    store, owner, mine = fleet
    statements = await traced(store, lambda: HOT_PATHS[path](store, owner, mine))
    assert statements, "the trace saw the store's statements"
    assert scans(store.path, statements) == []


async def test_a_nodes_jobs_are_read_through_the_node_not_the_account(
    fleet: tuple[SqliteStore, Account, list[Launch]],
) -> None:
    store, owner, mine = fleet
    statements = await traced(store, lambda: _node_with_jobs(store, owner, mine))
    with sqlite3.connect(store.path) as conn:
        plans = [
            row[3]
            for statement in statements
            if "FROM jobs" in statement or "JOIN jobs" in statement
            for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}")
        ]
    jobs_reads = [plan for plan in plans if plan.startswith("SEARCH j ")]
    assert jobs_reads and all("jobs_by_node (node_id=?)" in plan for plan in jobs_reads)


async def test_opening_the_store_refreshes_the_planners_statistics(
    fleet: tuple[SqliteStore, Account, list[Launch]],
) -> None:
    store, _, _ = fleet
    await store.close()
    await store.open()
    with sqlite3.connect(store.path) as conn:
        stats = dict(conn.execute("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'jobs'"))
    rows, per_node, *_ = stats["jobs_by_node"].split()
    assert int(rows) == 2 * NODES and int(per_node) == 1
