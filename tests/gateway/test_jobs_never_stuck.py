"""No job stays unfinished without a reason: a job whose herk node died ends ``interrupted``
(the reconciler, see gateway/reconciler.py), and a job that waits says why (``waiting_reason``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.services import SERVICES
from megam import topology, wire

BEAT = 0.1
Gateway = Any


@pytest.fixture
async def watched(gateway_with: Any) -> Gateway:
    """The gateway with a reconciler that judges herk nodes silent after half a second."""
    return await gateway_with(herk_silence_min_seconds=0.5, reconcile_interval_seconds=0.05)


def heartbeat(name: str, held: list[wire.HeldJob], **extra: Any) -> wire.Heartbeat:
    return wire.Heartbeat(
        herk=name,
        workers=2,
        busy=len(held),
        inflight=[h.job_id for h in held],
        version="test",
        started_at=time.time() - 60,
        at=time.time(),
        jobs=held,
        interval=BEAT,
        **extra,
    )


def holding(job: dict[str, Any], *, accepted: bool) -> wire.HeldJob:
    return wire.HeldJob(job_id=job["id"], attempt=1, accepted=accepted, since=time.time())


@contextlib.asynccontextmanager
async def beating(herk: Any, name: str, held: list[wire.HeldJob]) -> AsyncIterator[None]:
    """A herk node that keeps sending heartbeats while the block runs."""

    async def beat() -> None:
        while True:
            await herk.publish(topology.heartbeat_key(name), wire.encode(heartbeat(name, held)))
            await asyncio.sleep(BEAT)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _launched(gateway: Gateway, job_of: Any, name: str) -> tuple[Any, dict[str, Any]]:
    api = await gateway.tenant()
    [job_id] = await api.launch(name)
    return api, await job_of(api, job_id)


async def _state(api: Any, job_id: str, state: str) -> dict[str, Any] | None:
    job = await api.job(job_id)
    return job if job["state"] == state else None


class TestAHerkNodeThatStopsBeating:
    async def test_its_accepted_jobs_end_interrupted_naming_the_node(
        self, watched: Gateway, herk: Any, job_of: Any, eventually: Any
    ) -> None:
        api, job = await _launched(watched, job_of, "lost.local")
        async with beating(herk, "herk-a", [holding(job, accepted=True)]):
            await herk.status(job, "running", seq=1, herk="herk-a")
            await eventually(lambda: _state(api, job["id"], "running"))
        # herk-a is silent from here on
        ended = await eventually(lambda: _state(api, job["id"], "interrupted"))
        assert ended["reason"].startswith("herk node herk-a stopped sending heartbeats")
        assert ended["herk"] == "herk-a"
        assert [h["state"] for h in ended["history"]] == ["queued", "running", "interrupted"]
        assert (await api.node("lost.local"))["status"] == "NOTRUNNING"

    async def test_the_end_is_announced_on_the_bus_as_herk_would(
        self, watched: Gateway, herk: Any, job_of: Any, eventually: Any, collector: Any
    ) -> None:
        statuses = collector()
        await herk.bus.consume_temporary(
            [(topology.EVENTS.name, topology.status_key("told.local"))], statuses
        )
        api, job = await _launched(watched, job_of, "told.local")
        async with beating(herk, "herk-t", [holding(job, accepted=True)]):
            await herk.status(job, "running", seq=1, herk="herk-t")
            await eventually(lambda: _state(api, job["id"], "running"))
        await eventually(lambda: _state(api, job["id"], "interrupted"))

        deliveries = await statuses.wait_for(2)  # herk's running, then the reconciler's end
        told = wire.decode(deliveries[-1].body, wire.StatusEvent)
        assert (told.job_id, told.state, told.seq) == (job["id"], "interrupted", 2)
        assert told.reason.startswith("herk node herk-t stopped sending heartbeats")

    async def test_jobs_it_had_not_accepted_are_left_to_the_broker_and_say_so(
        self, watched: Gateway, herk: Any, job_of: Any, eventually: Any
    ) -> None:
        api, redeliverable = await _launched(watched, job_of, "again.local")
        _, sentinel = await _launched(watched, job_of, "sentinel.local")
        held = [holding(redeliverable, accepted=False), holding(sentinel, accepted=True)]
        async with beating(herk, "herk-b", held):
            for job in (redeliverable, sentinel):
                await herk.status(job, "running", seq=1, herk="herk-b")
            await eventually(lambda: _state(api, redeliverable["id"], "running"))
        # the sentinel's end proves the reconciler has judged herk-b silent
        await eventually(lambda: _ended(watched, sentinel))

        async def explained() -> dict[str, Any] | None:
            job = await api.job(redeliverable["id"])
            reason = job["waiting_reason"] or {}
            return job if reason.get("code") == "herk_node_silent" else None

        job = await eventually(explained)
        assert job["state"] == "running"
        assert "herk-b" in job["waiting_reason"]["text"]

    async def test_a_real_outcome_that_arrived_first_wins(
        self, watched: Gateway, herk: Any, job_of: Any, eventually: Any
    ) -> None:
        api, done = await _launched(watched, job_of, "quick.local")
        _, sentinel = await _launched(watched, job_of, "sentinel.local")
        # herk-c dies after reporting one outcome but before a heartbeat without that job
        held = [holding(done, accepted=True), holding(sentinel, accepted=True)]
        async with beating(herk, "herk-c", held):
            for job in (done, sentinel):
                await herk.status(job, "running", seq=1, herk="herk-c")
            await herk.status(done, "succeeded", seq=2, herk="herk-c")
            await eventually(lambda: _state(api, done["id"], "succeeded"))
        await eventually(lambda: _ended(watched, sentinel))
        assert (await api.job(done["id"]))["state"] == "succeeded"


def _running_since_long_ago(job: dict[str, Any], herk_name: str) -> wire.StatusEvent:
    return wire.StatusEvent(
        job_id=job["id"],
        node=job["node_name"],
        account=job["account"],
        type=job["command"]["type"],
        state=wire.JobState.RUNNING,
        seq=1,
        herk=herk_name,
        at=time.time() - 60,
    )


class TestAHerkNodeThatForgetsAJob:
    async def test_a_job_its_heartbeats_stopped_listing_ends_interrupted(
        self, watched: Gateway, herk: Any, job_of: Any, eventually: Any
    ) -> None:
        api, job = await _launched(watched, job_of, "forgotten.local")
        async with beating(herk, "herk-e", []):
            # the job went running on herk-e long ago; herk-e's beats no longer list it
            event = _running_since_long_ago(job, "herk-e")
            await herk.publish(topology.status_key(event.node), wire.encode(event))
            ended = await eventually(lambda: _state(api, job["id"], "interrupted"))
        assert ended["reason"].startswith("herk node herk-e no longer holds the job")

    async def test_a_job_a_live_node_still_lists_keeps_running(
        self, watched: Gateway, herk: Any, job_of: Any, eventually: Any
    ) -> None:
        api, kept = await _launched(watched, job_of, "kept.local")
        _, sentinel = await _launched(watched, job_of, "dropped.local")
        async with beating(herk, "herk-f", [holding(kept, accepted=True)]):
            for job in (kept, sentinel):
                event = _running_since_long_ago(job, "herk-f")
                await herk.publish(topology.status_key(event.node), wire.encode(event))
            await eventually(lambda: _ended(watched, sentinel))
            job = await api.job(kept["id"])
        assert (job["state"], job["waiting_reason"]["code"]) == ("running", "running")


async def _ended(gateway: Gateway, job: dict[str, Any]) -> bool:
    """True once the reconciler ended ``job`` (read through the store: any tenant's job)."""
    store = gateway.client.app[SERVICES].store
    found = await store.job(job["account"], job["id"])
    return found is not None and found.state == "interrupted"


class TestWhyAJobWaits:
    async def test_no_herk_node_alive(self, gateway: Gateway, job_requests: Any) -> None:
        api = await gateway.tenant()
        [job_id] = await api.launch("alone.local")
        job = await api.job(job_id)
        assert job["waiting_reason"]["code"] == "no_herk_node"
        assert "no herk node is alive" in job["waiting_reason"]["text"]
        node = await api.node("alone.local")
        assert node["request"]["waiting_reason"]["code"] == "no_herk_node"

    async def test_queued_behind_the_jobs_ready_in_the_queue(
        self, gateway: Gateway, herk: Any, eventually: Any
    ) -> None:
        api = await gateway.tenant()
        ids = [(await api.launch(f"q{n}.local"))[0] for n in range(3)]
        async with beating(herk, "herk-g", []):

            async def explained() -> dict[str, Any] | None:
                reason = (await api.job(ids[-1]))["waiting_reason"]
                return reason if reason["code"] == "queued_behind" else None

            reason = await eventually(explained)
        assert reason["ahead"] == 3  # nothing consumes herk.requests here
        assert reason["text"].startswith("queued behind 3 jobs; 1 herk nodes alive")

    async def test_broker_unreachable_while_the_outbox_holds_it(self, gateway: Gateway) -> None:
        api = await gateway.tenant()
        await gateway.bus.close()
        response = await api.post(
            "/v1/nodes/content", {"node_name": "held.local", "predefcloud": "local"}
        )
        info, _ = await response.json()
        job = await api.job(info["job_id"])
        assert job["waiting_reason"]["code"] == "broker_unreachable"
        assert "the gateway holds it and retries" in job["waiting_reason"]["text"]

    async def test_a_finished_job_has_no_waiting_reason(
        self, launched: Any, herk: Any, eventually: Any
    ) -> None:
        api, job = await launched()
        await herk.status(job, "succeeded", seq=2)
        done = await eventually(lambda: _state(api, job["id"], "succeeded"))
        assert done["waiting_reason"] is None
