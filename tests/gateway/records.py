"""Records for the rule tests: a node and its job as the store would load them."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.store.records import CloudTarget, HistoryEntry, Job, Node
from megam import wire

LOCAL = CloudTarget(name="local", cctype="local", spec={}, access={})


def node(**changes: Any) -> Node:
    record = Node(
        id="NOD1", account_id="ACT1", name="web.local", node_type="APP", status="LAUNCHING",
        cloud=LOCAL, command={}, predefs={}, defns_encrypted=None, created_at=1.0, updated_at=1.0,
    )  # fmt: skip
    return msgspec.structs.replace(record, **changes)


def job(**changes: Any) -> Job:
    record = Job(
        id="RIP1", account_id="ACT1", node_id="NOD1", node_name="web.local", req_type="create",
        job_type="local.create", params={}, state="queued", reason="waiting", exit_code=None,
        attempt=0, seq=0, herk="", correlation_id="c1", published=True, created_at=1.0,
        updated_at=1.0, history=(HistoryEntry(state="queued", reason="waiting", at=1.0),),
    )  # fmt: skip
    return msgspec.structs.replace(record, **changes)


def status(state: str, **fields: Any) -> wire.StatusEvent:
    values: dict[str, Any] = {
        "job_id": "RIP1", "node": "web.local", "account": "ACT1", "type": "local.create",
        "state": wire.JobState(state), "attempt": 1, "seq": 1, "at": 10.0,
    }  # fmt: skip
    return wire.StatusEvent(**(values | fields))
