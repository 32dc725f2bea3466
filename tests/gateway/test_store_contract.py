"""The store contract: what every adapter must do. A new adapter joins the ``store`` fixture."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from msgspec.structs import replace

from gateway import jobs
from gateway.store import Conflict, Store, store_for_url
from gateway.store.records import (
    Account,
    CloudTarget,
    Job,
    Launch,
    Node,
    OutboxEntry,
    PredefCloud,
)
from megam import wire

LOCAL = CloudTarget(name="local", cctype="local", spec={}, access={})
_ids = itertools.count(1000)


def new_id(prefix: str) -> str:
    return f"{prefix}{next(_ids)}"


@pytest.fixture(params=["sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    adapter = store_for_url(f"sqlite:///{tmp_path / 'contract.db'}")
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
