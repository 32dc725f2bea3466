"""The node rules alone (``gateway.rules.nodes``): status after a job, updates, admitting."""

from __future__ import annotations

import pytest

from gateway.rules import nodes as rules
from gateway.store import Conflict, NotStored
from gateway.store.records import NodeChange
from megam.wire import JobState
from tests.gateway.records import job, node


class TestStatusAfterAJob:
    def test_a_create_ending_decides_running_or_notrunning(self) -> None:
        assert rules.moved(node(), "create", JobState.SUCCEEDED, 5.0).status == "RUNNING"
        assert rules.moved(node(), "create", JobState.CANCELLED, 5.0).status == "NOTRUNNING"

    def test_a_status_that_stays_is_no_change(self) -> None:
        assert rules.moved(node(), "create", JobState.RUNNING, 5.0) is None
        assert rules.moved(node(status="RUNNING"), "delete", JobState.FAILED, 5.0) is None

    def test_a_deleted_node_stays_deleted(self) -> None:
        assert rules.moved(node(status="DELETED"), "create", JobState.SUCCEEDED, 5.0) is None
        assert rules.moved(node(status="RUNNING"), "delete", JobState.SUCCEEDED, 5.0).status == (
            "DELETED"
        )


class TestUpdates:
    def test_empty_fields_keep_the_old_values(self) -> None:
        changed = rules.updated(
            node(appdefnsid="APP1"), "web.local", NodeChange(status="RUNNING"), busy=False, at=7.0
        )
        assert (changed.status, changed.name, changed.appdefnsid, changed.updated_at) == (
            "RUNNING", "web.local", "APP1", 7.0,
        )  # fmt: skip

    def test_a_rename_waits_for_the_nodes_jobs(self) -> None:
        rename = NodeChange(new_name="api.local")
        with pytest.raises(Conflict, match="unfinished job"):
            rules.updated(node(), "web.local", rename, busy=True, at=7.0)
        assert rules.updated(node(), "web.local", rename, busy=False, at=7.0).name == "api.local"
        # a busy node may still change anything else, and "renaming" to its own name
        same = NodeChange(new_name="web.local", status="RUNNING")
        assert rules.updated(node(), "web.local", same, busy=True, at=7.0).status == "RUNNING"

    def test_only_live_nodes_are_updated(self) -> None:
        with pytest.raises(NotStored, match=r"no live node named web\.local"):
            rules.updated(None, "web.local", NodeChange(), busy=False, at=7.0)
        with pytest.raises(NotStored):
            rules.updated(node(status="DELETED"), "web.local", NodeChange(), busy=False, at=7.0)


class TestAdmittingARequest:
    def test_a_live_node_without_a_pending_request_takes_one(self) -> None:
        rules.admit_request(job(req_type="delete"), node(status="RUNNING"), pending=None)

    @pytest.mark.parametrize(
        ("found", "pending", "message"),
        [
            (None, None, "does not exist"),
            (node(status="DELETED"), None, "already deleted"),
            (node(), "RIP9", r"already in progress \(job RIP9\)"),
        ],
    )
    def test_a_request_is_refused(self, found: object, pending: str | None, message: str) -> None:
        with pytest.raises(Conflict, match=message):
            rules.admit_request(job(req_type="delete"), found, pending)  # type: ignore[arg-type]
