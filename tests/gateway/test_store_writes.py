"""Every store write says, once committed, which nodes it wrote (``Store.listen``): the node-view
cache drops exactly those. Both adapters, every write path; a new store call fails the
completeness test until it is classified here and, if it writes nodes or jobs, given a case."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from gateway.store import Store
from gateway.store.records import Account, Launch, NodeChange, Written
from gateway.store.sqlite import SqliteStore
from tests.gateway.test_store_contract import (
    account,
    delete_of,
    launch,
    log_event,
    status,
    store,  # noqa: F401 - the fixture: both adapters
)

Key = tuple[str, str]
Case = Callable[[Store, Account, Launch], Awaitable[set[Key]]]


async def _launches(s: Store, owner: Account, _: Launch) -> set[Key]:
    await s.add_launches([launch(owner, "second.local")])
    return {(owner.id, "second.local")}


async def _launch_groups(s: Store, owner: Account, _: Launch) -> set[Key]:
    await s.add_launch_groups([[launch(owner, "g1.local")], [launch(owner, "g2.local")]])
    return {(owner.id, "g1.local"), (owner.id, "g2.local")}


async def _request(s: Store, owner: Account, first: Launch) -> set[Key]:
    await s.apply_status(status(first, "succeeded", seq=1))
    await s.add_request(*delete_of(first.node))
    return {(owner.id, first.node.name)}


async def _rename(s: Store, owner: Account, first: Launch) -> set[Key]:
    await s.apply_status(status(first, "succeeded", seq=1))
    await s.update_node(owner.id, first.node.name, NodeChange(new_name="renamed.local"), 2.0)
    return {(owner.id, first.node.name), (owner.id, "renamed.local")}


async def _cancel(s: Store, owner: Account, first: Launch) -> set[Key]:
    await s.cancel_job(owner.id, first.job.id, "ann@example.com", time.time())
    return {(owner.id, first.node.name)}


async def _sent(s: Store, owner: Account, first: Launch) -> set[Key]:
    await s.outbox_sent(first.job.id, time.time())
    return {(owner.id, first.node.name)}


async def _sent_all(s: Store, owner: Account, first: Launch) -> set[Key]:
    await s.outbox_sent_all([first.job.id], time.time())
    return {(owner.id, first.node.name)}


async def _failed(s: Store, owner: Account, first: Launch) -> set[Key]:
    await s.outbox_failed(first.job.id, "broker down", time.time() + 5, time.time())
    return {(owner.id, first.node.name)}


async def _status(s: Store, owner: Account, first: Launch) -> set[Key]:
    await s.apply_status(status(first, "running", seq=1))
    return {(owner.id, first.node.name)}


async def _purge(s: Store, owner: Account, first: Launch) -> set[Key]:
    await s.apply_status(status(first, "succeeded", seq=1))
    await s.purge(time.time() + 400 * 86400)  # long after the job ended: it goes
    return {(owner.id, first.node.name)}


NODE_WRITES: dict[str, Case] = {
    "add_launches": _launches,
    "add_launch_groups": _launch_groups,
    "add_request": _request,
    "update_node": _rename,
    "cancel_job": _cancel,
    "outbox_sent": _sent,
    "outbox_sent_all": _sent_all,
    "outbox_failed": _failed,
    "apply_status": _status,
    "purge": _purge,
}
OTHER_WRITES = {
    "add_account", "add_predef_cloud", "add_document", "replace_document", "claim_outbox",
    "add_log_lines", "add_metrics", "record_heartbeat", "roll_up",
}  # fmt: skip
READS = {
    "account_by_email", "predef_cloud", "predef_clouds", "node", "node_with_jobs",
    "node_by_id", "nodes", "job", "jobs", "running_jobs", "document", "documents",
    "outbox_size", "log_lines", "search_logs", "metrics", "herk_nodes",
}  # fmt: skip
LIFE = {"open", "close", "ping", "listen"}


def test_every_store_call_is_classified() -> None:
    calls = {
        name
        for name, _ in inspect.getmembers(Store, inspect.isfunction)
        if not name.startswith("_")
    }
    assert calls == set(NODE_WRITES) | OTHER_WRITES | READS | LIFE


async def _heard(s: Store) -> list[Written]:
    heard: list[Written] = []
    s.listen(heard.append)
    return heard


@pytest.mark.parametrize("call", sorted(NODE_WRITES))
async def test_each_write_names_the_nodes_it_wrote_and_no_other(
    store: Store,  # noqa: F811
    call: str,
) -> None:
    owner, other = await account(store), await account(store)
    first = launch(owner, "first.local")
    await store.add_launches([first, launch(other, "theirs.local")])
    heard = await _heard(store)
    expected = await NODE_WRITES[call](store, owner, first)
    written = set().union(*(w.nodes for w in heard))
    everything = any(w.everything for w in heard)
    assert expected <= written or everything
    assert (other.id, "theirs.local") not in written


async def test_writes_that_no_node_view_shows_void_nothing(store: Store) -> None:  # noqa: F811
    owner = await account(store)
    first = launch(owner, "first.local")
    await store.add_launches([first])
    heard = await _heard(store)
    await store.add_log_lines(log_event(first, ["hello"]))
    await store.claim_outbox(time.time() + 60, 30, 10)
    assert heard == []


async def test_a_failed_write_voids_nothing(store: Store) -> None:  # noqa: F811
    owner = await account(store)
    first = launch(owner, "first.local")
    await store.add_launches([first])
    heard = await _heard(store)
    with pytest.raises(Exception, match="already exists"):
        await store.add_launches([launch(owner, "new.local"), launch(owner, "first.local")])
    assert heard == []


async def test_sqlite_names_the_nodes_of_any_write_to_nodes_or_jobs(tmp_path: Path) -> None:
    """The database itself records the nodes a transaction wrote (triggers), so a write path
    the adapter's code has never seen cannot leave a view stale."""
    sqlite = SqliteStore(tmp_path / "any.db")
    await sqlite.open()
    try:
        owner = await account(sqlite)
        first = launch(owner, "first.local")
        await sqlite.add_launches([first])
        heard = await _heard(sqlite)
        sql = "UPDATE jobs SET reason = 'changed by hand' WHERE id = ?"
        await sqlite._write(lambda conn: conn.execute(sql, (first.job.id,)))
        assert heard == [Written(nodes=frozenset({(owner.id, "first.local")}))]
    finally:
        await sqlite.close()
