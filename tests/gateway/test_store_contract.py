"""The store contract: what every adapter must do. A new adapter joins the ``store`` fixture."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from msgspec.structs import replace

from gateway import jobs
from gateway.store import Conflict, NotStored, Store, store_for_url
from gateway.store import mongo as mongo_store
from gateway.store import sqlite as sqlite_store
from gateway.store.records import (
    Account,
    CloudTarget,
    Document,
    Job,
    Launch,
    MetricSample,
    Node,
    NodeChange,
    OutboxEntry,
    PredefCloud,
    Purged,
)
from megam import wire

LOCAL = CloudTarget(name="local", cctype="local", spec={}, access={})
_ids = itertools.count(1000)


def new_id(prefix: str) -> str:
    return f"{prefix}{next(_ids)}"


@pytest.fixture(params=["sqlite", "mongodb"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "mongodb":
        url = request.getfixturevalue("mongo_url")
    else:
        url = f"sqlite:///{tmp_path / 'contract.db'}"
    adapter = store_for_url(url)
    await adapter.open()
    yield adapter
    await adapter.close()


async def account(store: Store, email: str | None = None) -> Account:
    record = Account(
        id=new_id("ACT"),
        email=email or f"{new_id('u')}@example.com",
        api_key_encrypted="token",
        authority="user",
        created_at=time.time(),
    )
    await store.add_account(record)
    return record


def launch(owner: Account, name: str, cloud: CloudTarget = LOCAL) -> Launch:
    now = time.time()
    node_id = new_id("NOD")
    job, outbox = jobs.new_job(
        job_id=new_id("RIP"),
        account_id=owner.id,
        node_id=node_id,
        node_name=name,
        req_type="create",
        cloud=cloud,
        run_list=["role[web]"],
        sealed=None,
        correlation_id="c1",
        now=now,
        lease=30,
    )
    node = Node(
        id=node_id,
        account_id=owner.id,
        name=name,
        node_type="APP",
        status="LAUNCHING",
        cloud=cloud,
        command={"x": 1},
        predefs={"name": "rails"},
        defns_encrypted=None,
        created_at=now,
        updated_at=now,
    )
    return Launch(node=node, job=job, outbox=outbox)


def delete_of(node: Node) -> tuple[Job, OutboxEntry]:
    job, outbox = jobs.new_job(
        job_id=new_id("RIP"),
        account_id=node.account_id,
        node_id=node.id,
        node_name=node.name,
        req_type="delete",
        cloud=node.cloud,
        run_list=[],
        sealed=None,
        correlation_id="c2",
        now=time.time(),
        lease=30,
    )
    return job, outbox


def status(
    of: Launch, state: str, *, seq: int, attempt: int = 1, **extra: object
) -> wire.StatusEvent:
    return wire.StatusEvent(
        job_id=of.job.id,
        node=of.node.name,
        account=of.node.account_id,
        type=of.job.job_type,
        state=wire.JobState(state),
        seq=seq,
        attempt=attempt,
        at=time.time(),
        **extra,  # type: ignore[arg-type]
    )


def log_event(of: Launch, texts: list[str], first: int = 0, attempt: int = 1) -> wire.LogEvent:
    return wire.LogEvent(
        job_id=of.job.id,
        node=of.node.name,
        account=of.node.account_id,
        attempt=attempt,
        lines=[
            wire.LogLine(seq=first + i, stream="stdout", text=t, at=1.0)
            for i, t in enumerate(texts)
        ],
    )


class TestAccounts:
    async def test_an_account_is_found_by_email(self, store: Store) -> None:
        created = await account(store, "ann@example.com")
        assert await store.account_by_email("ann@example.com") == created
        assert await store.account_by_email("bob@example.com") is None

    async def test_an_email_is_taken_once(self, store: Store) -> None:
        await account(store, "ann@example.com")
        with pytest.raises(Conflict, match=r"ann@example\.com"):
            await account(store, "ann@example.com")


class TestPredefClouds:
    async def test_clouds_belong_to_their_account(self, store: Store) -> None:
        ann, bob = await account(store), await account(store)
        cloud = PredefCloud(
            id=new_id("PDC"),
            account_id=ann.id,
            name="aws",
            type_name="ec2",
            spec={"image": "ami"},
            access={"region": "r"},
            credentials_encrypted="sealed",
            created_at=time.time(),
        )
        await store.add_predef_cloud(cloud)
        assert await store.predef_cloud(ann.id, "aws") == cloud
        assert await store.predef_cloud(bob.id, "aws") is None
        assert await store.predef_clouds(ann.id) == [cloud]
        assert await store.predef_clouds(bob.id) == []
        with pytest.raises(Conflict, match="aws"):
            await store.add_predef_cloud(replace(cloud, id=new_id("PDC")))
        await store.add_predef_cloud(replace(cloud, id=new_id("PDC"), account_id=bob.id))


class TestNodesAndJobs:
    async def test_a_launch_stores_node_job_history_and_outbox(self, store: Store) -> None:
        owner = await account(store)
        first = launch(owner, "web.local")
        await store.add_launches([first])
        assert await store.node(owner.id, "web.local") == first.node
        assert await store.node_by_id(owner.id, first.node.id) == first.node
        [job] = await store.jobs(owner.id, node_id=first.node.id)
        assert job == first.job
        assert await store.job(owner.id, first.job.id) == first.job
        assert await store.outbox_size() == 1

    async def test_launches_are_all_or_nothing(self, store: Store) -> None:
        owner = await account(store)
        await store.add_launches([launch(owner, "b.local")])
        with pytest.raises(Conflict, match=r"b\.local"):
            await store.add_launches([launch(owner, "a.local"), launch(owner, "b.local")])
        assert await store.node(owner.id, "a.local") is None
        assert await store.outbox_size() == 1

    async def test_launch_groups_succeed_or_fail_each_on_their_own(self, store: Store) -> None:
        owner = await account(store)
        first, clash, other = (
            launch(owner, "g1.local"),
            launch(owner, "g1.local"),
            launch(owner, "g2.local"),
        )
        both = [launch(owner, "g3.local"), launch(owner, "g2.local")]
        results = await store.add_launch_groups([[first], [clash], [other], both])
        assert [type(r).__name__ for r in results] == [
            "NoneType",
            "Conflict",
            "NoneType",
            "Conflict",
        ]
        assert sorted(n.name for n in await store.nodes(owner.id)) == ["g1.local", "g2.local"]
        assert await store.outbox_size() == 2  # the refused groups left nothing behind

    async def test_node_names_are_unique_across_accounts_while_alive(self, store: Store) -> None:
        ann, bob = await account(store), await account(store)
        await store.add_launches([launch(ann, "shared.local")])
        with pytest.raises(Conflict):
            await store.add_launches([launch(bob, "shared.local")])

    async def test_reads_are_scoped_to_the_account(self, store: Store) -> None:
        ann, bob = await account(store), await account(store)
        mine = launch(ann, "mine.local")
        await store.add_launches([mine])
        assert await store.node(bob.id, "mine.local") is None
        assert await store.node_by_id(bob.id, mine.node.id) is None
        assert await store.nodes(bob.id) == []
        assert await store.job(bob.id, mine.job.id) is None
        assert await store.jobs(bob.id) == []
        assert await store.jobs(bob.id, node_id=mine.node.id) == []
        await store.add_log_lines(log_event(mine, ["secret output"]))
        assert await store.log_lines(bob.id, mine.node.id) == []

    async def test_a_delete_request_is_refused_while_one_is_pending(self, store: Store) -> None:
        owner = await account(store)
        first = launch(owner, "d.local")
        await store.add_launches([first])
        await store.add_request(*delete_of(first.node))
        with pytest.raises(Conflict, match="already in progress"):
            await store.add_request(*delete_of(first.node))

    async def test_a_deleted_node_takes_no_requests_and_frees_its_name(self, store: Store) -> None:
        owner = await account(store)
        first = launch(owner, "d.local")
        await store.add_launches([first])
        job, outbox = delete_of(first.node)
        await store.add_request(job, outbox)
        await store.apply_status(
            wire.StatusEvent(
                job_id=job.id,
                node="d.local",
                account=owner.id,
                type=job.job_type,
                state=wire.JobState.SUCCEEDED,
                seq=1,
            )
        )
        assert (await store.node(owner.id, "d.local")).status == "DELETED"
        with pytest.raises(Conflict, match="already deleted"):
            await store.add_request(*delete_of(first.node))
        again = launch(owner, "d.local")
        await store.add_launches([again])
        assert (await store.node(owner.id, "d.local")).id == again.node.id  # the live one wins
        assert len(await store.nodes(owner.id)) == 2


class TestOutbox:
    async def test_due_entries_are_claimed_once_per_lease(self, store: Store) -> None:
        owner = await account(store)
        first = launch(owner, "o.local")
        await store.add_launches([first])
        now = time.time()
        assert await store.claim_outbox(now, 30, 10) == []  # the request itself publishes first
        [claimed] = await store.claim_outbox(now + 31, 30, 10)
        assert (claimed.job_id, claimed.body) == (first.job.id, first.outbox.body)
        assert await store.claim_outbox(now + 32, 30, 10) == []

    async def test_a_failure_is_retried_later_and_explained(self, store: Store) -> None:
        owner = await account(store)
        first = launch(owner, "o.local")
        await store.add_launches([first])
        now = time.time()
        await store.outbox_failed(first.job.id, "broker down", now + 5, now)
        assert await store.claim_outbox(now + 1, 30, 10) == []
        [claimed] = await store.claim_outbox(now + 6, 30, 10)
        assert claimed.attempts == 1
        job = await store.job(owner.id, first.job.id)
        assert "broker down" in job.reason
        assert not job.published
        await store.outbox_sent(first.job.id, now + 7)
        job = await store.job(owner.id, first.job.id)
        assert job.published
        assert job.reason.startswith("handed to the queue after 2 attempts")
        assert await store.outbox_size() == 0


class TestStatusEvents:
    async def test_only_newer_events_apply_and_terminal_jobs_stay_put(self, store: Store) -> None:
        owner = await account(store)
        first = launch(owner, "s.local")
        await store.add_launches([first])
        assert (await store.apply_status(status(first, "running", seq=2))).applied
        assert (await store.apply_status(status(first, "running", seq=2))).why == "stale"
        assert (await store.apply_status(status(first, "running", seq=1))).why == "stale"
        done = await store.apply_status(status(first, "failed", seq=3, exit_code=4))
        assert (done.applied, done.node_id) == (True, first.node.id)
        late = await store.apply_status(status(first, "succeeded", attempt=2, seq=0))
        assert (late.applied, late.why) == (False, "job already ended (failed)")
        job = await store.job(owner.id, first.job.id)
        assert (job.state, job.exit_code, job.attempt, job.seq) == ("failed", 4, 1, 3)
        assert [h.state for h in job.history] == ["queued", "running", "failed"]
        assert (await store.node(owner.id, "s.local")).status == "NOTRUNNING"

    async def test_events_that_do_not_fit_the_job_are_told_apart(self, store: Store) -> None:
        owner, other = await account(store), await account(store)
        first = launch(owner, "s.local")
        await store.add_launches([first])
        unknown = replace(status(first, "running", seq=1), job_id="RIP1")
        assert (await store.apply_status(unknown)).why == "unknown job"
        forged = replace(status(first, "succeeded", seq=1), account=other.id)
        outcome = await store.apply_status(forged)
        assert outcome.mismatch and not outcome.applied
        assert (await store.job(owner.id, first.job.id)).state == "queued"


def document(owner: Account, kind: str, name: str | None = None, node_id: str = "") -> Document:
    doc_id = new_id("SSH")
    return Document(
        kind=kind,
        id=doc_id,
        account_id=owner.id,
        name=name or doc_id,
        node_id=node_id,
        body={"path": "/k"},
        secret_encrypted="token",
        created_at=time.time(),
        updated_at=time.time(),
    )


class TestDocuments:
    async def test_found_by_id_or_name_within_the_account_and_kind(self, store: Store) -> None:
        owner, other = await account(store), await account(store)
        key = document(owner, "sshkey", "deploy")
        await store.add_document(key)
        assert await store.document(owner.id, "sshkey", "deploy") == key
        assert await store.document(owner.id, "sshkey", key.id) == key
        assert await store.document(other.id, "sshkey", "deploy") is None
        assert await store.document(owner.id, "appdefns", "deploy") is None
        with pytest.raises(Conflict):
            await store.add_document(document(owner, "sshkey", "deploy"))
        await store.add_document(document(other, "sshkey", "deploy"))  # names are per account

    async def test_listed_per_node_and_replaced_only_by_their_owner(self, store: Store) -> None:
        owner, other = await account(store), await account(store)
        a, b = (
            document(owner, "appdefns", node_id="NOD1"),
            document(owner, "appdefns", node_id="NOD2"),
        )
        await store.add_document(a)
        await store.add_document(b)
        assert await store.documents(owner.id, "appdefns", node_id="NOD2") == [b]
        assert await store.documents(owner.id, "appdefns") == [a, b]
        assert not await store.replace_document(replace(a, account_id=other.id, body={}))
        assert await store.replace_document(replace(a, body={"env_sh": "x"}))
        assert (await store.document(owner.id, "appdefns", a.id)).body == {"env_sh": "x"}


class TestNodeUpdates:
    async def test_changes_apply_and_empty_fields_keep_the_old_value(self, store: Store) -> None:
        owner = await account(store)
        first = launch(owner, "n.local")
        await store.add_launches([first])
        updated = await store.update_node(
            owner.id, "n.local", NodeChange(status="RUNNING", appdefnsid="ADF1"), 5.0
        )
        assert (updated.status, updated.appdefnsid, updated.name) == ("RUNNING", "ADF1", "n.local")
        again = await store.update_node(owner.id, "n.local", NodeChange(boltdefnsid="BDF1"), 6.0)
        assert (again.status, again.appdefnsid, again.boltdefnsid) == ("RUNNING", "ADF1", "BDF1")
        assert await store.node(owner.id, "n.local") == again

    async def test_renames_wait_for_jobs_and_names_stay_unique(self, store: Store) -> None:
        owner, other = await account(store), await account(store)
        first, taken = launch(owner, "a.local"), launch(other, "b.local")
        await store.add_launches([first])
        await store.add_launches([taken])
        with pytest.raises(Conflict):
            await store.update_node(owner.id, "a.local", NodeChange(new_name="c.local"), 1.0)
        await store.apply_status(status(first, "succeeded", seq=2))
        with pytest.raises(Conflict):
            await store.update_node(owner.id, "a.local", NodeChange(new_name="b.local"), 1.0)
        await store.update_node(owner.id, "a.local", NodeChange(new_name="c.local"), 1.0)
        assert (await store.node(owner.id, "c.local")).id == first.node.id
        with pytest.raises(NotStored):
            await store.update_node(other.id, "c.local", NodeChange(status="NONE"), 1.0)


class TestCancels:
    async def test_a_job_still_in_the_outbox_ends_cancelled_and_leaves_it(
        self, store: Store
    ) -> None:
        owner = await account(store)
        first = launch(owner, "c.local")
        await store.add_launches([first])
        outcome = await store.cancel_job(owner.id, first.job.id, "ann@example.com", time.time())
        assert outcome is not None and outcome.ended_here
        assert (outcome.job.state, outcome.node_id) == ("cancelled", first.node.id)
        assert await store.outbox_size() == 0
        assert (await store.node(owner.id, "c.local")).status == "NOTRUNNING"
        late = await store.apply_status(status(first, "running", seq=1))
        assert (late.applied, late.why) == (False, "job already ended (cancelled)")

    async def test_a_published_job_keeps_its_state_and_records_the_request(
        self, store: Store
    ) -> None:
        owner = await account(store)
        first = launch(owner, "c.local")
        await store.add_launches([first])
        await store.outbox_sent(first.job.id, time.time())
        outcome = await store.cancel_job(owner.id, first.job.id, "ann@example.com", time.time())
        assert outcome is not None and not outcome.ended_here
        assert outcome.job.state == "queued"
        assert outcome.job.history[-1].reason.startswith("cancel requested by ann@example.com")
        assert (await store.apply_status(status(first, "cancelled", seq=2))).applied

    async def test_only_the_owner_can_cancel_and_an_ended_job_stays_ended(
        self, store: Store
    ) -> None:
        owner, other = await account(store), await account(store)
        first = launch(owner, "c.local")
        await store.add_launches([first])
        assert await store.cancel_job(other.id, first.job.id, "x@example.com", 1.0) is None
        await store.apply_status(status(first, "succeeded", seq=2))
        outcome = await store.cancel_job(owner.id, first.job.id, "ann@example.com", 2.0)
        assert outcome is not None and (outcome.job.state, outcome.ended_here) == (
            "succeeded",
            False,
        )

    async def test_running_jobs_of_every_account_are_listed(self, store: Store) -> None:
        one, two = await account(store), await account(store)
        a, b, c = launch(one, "a.local"), launch(two, "b.local"), launch(two, "c.local")
        await store.add_launches([a])
        await store.add_launches([b, c])
        for running in (a, b):
            await store.apply_status(status(running, "running", seq=1, herk="h1"))
        found = await store.running_jobs()
        assert sorted((j.id, j.herk) for j in found) == sorted([(a.job.id, "h1"), (b.job.id, "h1")])


class TestLogLines:
    async def test_lines_are_kept_once_with_increasing_ids(self, store: Store) -> None:
        owner = await account(store)
        first = launch(owner, "l.local")
        await store.add_launches([first])
        assert (await store.add_log_lines(log_event(first, ["a", "b"]))).applied
        assert (await store.add_log_lines(log_event(first, ["a", "b"]))).why == "duplicate"
        await store.add_log_lines(log_event(first, ["c"], first=2))
        lines = await store.log_lines(owner.id, first.node.id)
        assert [line.text for line in lines] == ["a", "b", "c"]
        assert [line.id for line in lines] == sorted({line.id for line in lines})

    async def test_tail_after_and_job_filters(self, store: Store) -> None:
        owner = await account(store)
        first = launch(owner, "l.local")
        await store.add_launches([first])
        await store.add_log_lines(log_event(first, [str(i) for i in range(10)]))
        delete, outbox = delete_of(first.node)
        await store.add_request(delete, outbox)
        await store.add_log_lines(
            wire.LogEvent(
                job_id=delete.id,
                node="l.local",
                account=owner.id,
                attempt=1,
                lines=[wire.LogLine(seq=0, stream="stderr", text="bye", at=2.0)],
            )
        )
        tail = await store.log_lines(owner.id, first.node.id, tail=3)
        assert [line.text for line in tail] == ["8", "9", "bye"]
        after = await store.log_lines(owner.id, first.node.id, after=tail[0].id, limit=1)
        assert [line.text for line in after] == ["9"]
        only_delete = await store.log_lines(owner.id, first.node.id, job_id=delete.id)
        assert [(line.text, line.stream) for line in only_delete] == [("bye", "stderr")]


class TestMetricsAndHeartbeats:
    async def test_samples_are_kept_per_node_once(self, store: Store) -> None:
        owner = await account(store)
        await store.add_launches([launch(owner, "m.local")])
        event = wire.MetricEvent(
            node="m.local", account=owner.id, samples={"cpu": 1.5, "rps": 9.0}, at=100.0
        )
        assert (await store.add_metrics(event)).applied
        assert not (await store.add_metrics(event)).applied
        samples = await store.metrics(owner.id, "m.local")
        assert [(s.name, s.value) for s in samples] == [("cpu", 1.5), ("rps", 9.0)]
        assert [s.name for s in await store.metrics(owner.id, "m.local", name="rps")] == ["rps"]
        assert await store.metrics(owner.id, "m.local", since=101.0) == []
        stranger = wire.MetricEvent(node="m.local", account="ACT1", samples={"cpu": 1.0}, at=1.0)
        assert (await store.add_metrics(stranger)).why == "unknown node"

    async def test_the_latest_heartbeat_of_each_herk_wins(self, store: Store) -> None:
        beat = wire.Heartbeat(
            herk="h1", workers=2, busy=1, inflight=["RIP1"], version="1", started_at=1.0, at=50.0
        )
        older = wire.Heartbeat(
            herk="h1", workers=9, busy=9, inflight=[], version="0", started_at=1.0, at=40.0
        )
        await store.record_heartbeat(beat)
        await store.record_heartbeat(older)
        [herk] = await store.herk_nodes()
        assert (herk.name, herk.workers, herk.inflight, herk.last_seen) == (
            "h1",
            2,
            ("RIP1",),
            50.0,
        )

    async def test_a_heartbeat_keeps_the_jobs_it_holds_and_its_interval(self, store: Store) -> None:
        held = [wire.HeldJob(job_id="RIP1", attempt=2, accepted=True, since=10.0)]
        beat = wire.Heartbeat(
            herk="h1", workers=1, busy=1, inflight=["RIP1"], version="1", started_at=1.0,
            at=50.0, jobs=held, interval=5.0,
        )  # fmt: skip
        await store.record_heartbeat(beat)
        [herk] = await store.herk_nodes()
        assert (herk.held, herk.interval, herk.holds("RIP1"), herk.holds("RIP2")) == (
            tuple(held),
            5.0,
            True,
            False,
        )


HOUR = 472_223 * 3600.0
"""An epoch second that starts an hour (and so a 5-minute point)."""


async def sampled(store: Store, owner: Account, node: str, samples: dict[float, float]) -> None:
    """Report one metric, ``cpu``, of ``node`` at each of the given times."""
    for at, value in samples.items():
        event = wire.MetricEvent(node=node, account=owner.id, samples={"cpu": value}, at=at)
        assert (await store.add_metrics(event)).applied


def points(
    samples: list[MetricSample],
) -> list[tuple[float, float, float | None, float | None, int]]:
    return [(s.at - HOUR, s.value, s.low, s.high, s.count) for s in samples]


class TestMetricRollups:
    async def test_samples_fold_into_five_minute_points_and_those_into_hours(
        self, store: Store
    ) -> None:
        owner = await account(store)
        await store.add_launches([launch(owner, "m.local")])
        await sampled(store, owner, "m.local", {HOUR: 1.0, HOUR + 10: 3.0, HOUR + 300: 8.0})

        assert await store.roll_up(HOUR + 600) == 3  # two 5-minute points, one hour

        five = await store.metrics(owner.id, "m.local", step=300)
        assert points(five) == [(0, 2.0, 1.0, 3.0, 2), (300, 8.0, 8.0, 8.0, 1)]
        assert {s.step for s in five} == {300}
        hour = await store.metrics(owner.id, "m.local", step=3600)
        assert points(hour) == [(0, 4.0, 1.0, 8.0, 3)]  # the mean of the samples, not of points
        raw = await store.metrics(owner.id, "m.local")
        assert [(s.value, s.step) for s in raw] == [(1.0, 0), (3.0, 0), (8.0, 0)]

    async def test_a_roll_up_with_nothing_new_writes_nothing(self, store: Store) -> None:
        owner = await account(store)
        await store.add_launches([launch(owner, "m.local")])
        await sampled(store, owner, "m.local", {HOUR: 1.0})
        assert await store.roll_up(HOUR + 600) == 2
        assert await store.roll_up(HOUR + 600) == 0

    async def test_a_late_sample_recomputes_the_points_it_falls_into(self, store: Store) -> None:
        owner = await account(store)
        await store.add_launches([launch(owner, "m.local")])
        await sampled(store, owner, "m.local", {HOUR + 60: 2.0, HOUR + 900: 6.0})
        await store.roll_up(HOUR + 1200)

        await sampled(store, owner, "m.local", {HOUR + 30: 4.0})  # e.g. from a backlog
        await store.roll_up(HOUR + 1200)

        five = await store.metrics(owner.id, "m.local", step=300)
        assert points(five) == [(0, 3.0, 2.0, 4.0, 2), (900, 6.0, 6.0, 6.0, 1)]
        assert points(await store.metrics(owner.id, "m.local", step=3600)) == [
            (0, 4.0, 2.0, 6.0, 3)
        ]

    async def test_a_long_backlog_rolls_up_in_batches(
        self, store: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(sqlite_store, "ROLLUP_BATCH", 4)
        monkeypatch.setattr(mongo_store, "ROLLUP_BATCH", 4)
        owner = await account(store)
        await store.add_launches([launch(owner, "m.local")])
        await sampled(store, owner, "m.local", {HOUR + 60 * i: float(i) for i in range(10)})

        await store.roll_up(HOUR + 3600)

        five = await store.metrics(owner.id, "m.local", step=300)
        assert [(s.at - HOUR, s.count) for s in five] == [(0, 5), (300, 5)]
        assert points(await store.metrics(owner.id, "m.local", step=3600)) == [
            (0, 4.5, 0.0, 9.0, 10)
        ]

    async def test_points_are_per_account_node_and_metric(self, store: Store) -> None:
        owner, other = await account(store), await account(store)
        await store.add_launches([launch(owner, "a.local"), launch(owner, "b.local")])
        await store.add_launches([launch(other, "c.local")])
        both = {"cpu": 1.0, "rps": 5.0}
        await store.add_metrics(
            wire.MetricEvent(node="a.local", account=owner.id, samples=both, at=HOUR)
        )
        await sampled(store, owner, "b.local", {HOUR: 7.0})
        await sampled(store, other, "c.local", {HOUR: 9.0})
        await store.roll_up(HOUR + 600)

        mine = await store.metrics(owner.id, "a.local", step=300)
        assert [(s.name, s.value) for s in mine] == [("cpu", 1.0), ("rps", 5.0)]
        only_rps = await store.metrics(owner.id, "a.local", name="rps", step=3600)
        assert [(s.name, s.value) for s in only_rps] == [("rps", 5.0)]
        assert [s.value for s in await store.metrics(owner.id, "b.local", step=300)] == [7.0]
        assert await store.metrics(other.id, "a.local", step=300) == []

    async def test_since_takes_the_point_that_holds_it_and_limit_keeps_the_newest(
        self, store: Store
    ) -> None:
        owner = await account(store)
        await store.add_launches([launch(owner, "m.local")])
        await sampled(store, owner, "m.local", {HOUR + 300 * i: float(i) for i in range(4)})
        await store.roll_up(HOUR + 1200)

        since = await store.metrics(owner.id, "m.local", since=HOUR + 650, step=300)
        assert [s.at - HOUR for s in since] == [600, 900]
        newest = await store.metrics(owner.id, "m.local", step=300, limit=1)
        assert [s.at - HOUR for s in newest] == [900]


class TestRetention:
    async def test_old_lines_and_long_finished_jobs_go_the_rest_stays(self, store: Store) -> None:
        owner = await account(store)
        old, running = launch(owner, "old.local"), launch(owner, "run.local")
        await store.add_launches([old, running])
        now = time.time()
        await store.apply_status(replace(status(old, "succeeded", seq=2), at=now - 400 * 86400))
        await store.apply_status(replace(status(running, "running", seq=1), at=now - 400 * 86400))
        stale = replace(
            log_event(running, ["old line"]),
            lines=[wire.LogLine(seq=0, stream="stdout", text="old line", at=now - 40 * 86400)],
        )
        fresh = replace(
            log_event(running, ["new line"], first=1),
            lines=[wire.LogLine(seq=1, stream="stdout", text="new line", at=now)],
        )
        await store.add_log_lines(stale)
        await store.add_log_lines(fresh)
        await store.add_log_lines(
            replace(
                log_event(old, ["done"]),
                lines=[wire.LogLine(seq=0, stream="stdout", text="done", at=now)],
            )
        )

        purged = await store.purge(now)

        assert (purged.lines, purged.jobs) == (2, 1)  # the stale line; the old job and its line
        assert await store.job(owner.id, old.job.id) is None
        assert (await store.job(owner.id, running.job.id)).state == "running"
        kept = await store.log_lines(owner.id, running.node.id)
        assert [line.text for line in kept] == ["new line"]
        assert (await store.node(owner.id, "old.local")).status == "RUNNING"

    async def test_each_metric_resolution_is_kept_for_its_own_time(self, store: Store) -> None:
        owner = await account(store)
        await store.add_launches([launch(owner, "m.local")])
        days = 86400.0
        now = HOUR + 500 * days
        await sampled(
            store,
            owner,
            "m.local",
            {now - 300 * days: 1.0, now - 30 * days: 2.0, now - 1 * days: 3.0},
        )

        purged = await store.purge(now)  # rolls up first: nothing is lost unrolled

        raw = await store.metrics(owner.id, "m.local")
        assert [s.value for s in raw] == [3.0]  # raw samples: 2 days
        five = await store.metrics(owner.id, "m.local", step=300)
        assert [s.value for s in five] == [2.0, 3.0]  # 5-minute points: 35 days
        hourly = await store.metrics(owner.id, "m.local", step=3600)
        assert [s.value for s in hourly] == [1.0, 2.0, 3.0]  # hourly points: 400 days
        assert purged.samples == 3  # two raw samples and one 5-minute point
        assert await store.purge(now) == Purged()


class TestDurability:
    async def test_data_survives_a_restart(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'restart.db'}"
        first = store_for_url(url)
        await first.open()
        owner = await account(first, "keep@example.com")
        await first.close()
        second = store_for_url(url)
        await second.open()
        try:
            assert await second.account_by_email("keep@example.com") == owner
        finally:
            await second.close()
