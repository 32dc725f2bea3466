"""Truthful endings, on both stores and through the reconciler: an ending the gateway presumed
(``interrupted`` for a silent herk node) gives way to what the attempt's own runner reports."""

from __future__ import annotations

from typing import Any

from gateway.options import GatewayOptions
from gateway.store import Store
from megam.bus.amqp import HEARTBEAT_SECONDS
from tests.gateway.test_jobs_never_stuck import _ended, _launched, _state, beating, holding
from tests.gateway.test_store_contract import (
    account,
    launch,
    status,
    store,  # noqa: F401 - the fixture: both adapters
)


async def test_a_presumed_ending_gives_way_to_the_attempts_outcome(
    store: Store,  # noqa: F811
) -> None:
    owner = await account(store)
    first = launch(owner, "cut.local")
    await store.add_launches([first])
    await store.apply_status(status(first, "running", seq=1))
    guess = status(first, "interrupted", seq=2, reason="herk node h stopped sending heartbeats")
    assert (await store.apply_status(guess, presumed=True)).applied
    assert (await store.node(owner.id, "cut.local")).status == "NOTRUNNING"
    other_attempt = status(first, "failed", attempt=2, seq=1)
    assert not (await store.apply_status(other_attempt)).applied
    assert (await store.apply_status(status(first, "succeeded", seq=2, exit_code=0))).applied
    done = await store.job(owner.id, first.job.id)
    assert done is not None and (done.state, done.exit_code, done.presumed) == (
        "succeeded", 0, False,
    )  # fmt: skip
    assert [h.state for h in done.history] == ["queued", "running", "interrupted", "succeeded"]
    assert (await store.node(owner.id, "cut.local")).status == "RUNNING"
    assert not (await store.apply_status(status(first, "failed", seq=3))).applied


async def test_a_partitioned_node_that_finishes_the_job_is_believed(
    gateway_with: Any, herk: Any, job_of: Any, eventually: Any
) -> None:
    watched = await gateway_with(herk_silence_min_seconds=0.5, reconcile_interval_seconds=0.05)
    api, job = await _launched(watched, job_of, "cut.local")
    async with beating(herk, "herk-p", [holding(job, accepted=True)]):
        await herk.status(job, "running", seq=1, herk="herk-p")
        await eventually(lambda: _state(api, job["id"], "running"))
    await eventually(lambda: _ended(watched, job))  # herk-p is cut off: presumed interrupted
    # the partition heals: herk-p's knife had exited 0, its buffered outcome arrives
    await herk.status(job, "succeeded", seq=2, herk="herk-p", exit_code=0, reason="created")
    done = await eventually(lambda: _state(api, job["id"], "succeeded"))
    states = [h["state"] for h in done["history"]]
    assert states == ["queued", "running", "interrupted", "succeeded"]
    assert (await api.node("cut.local"))["status"] == "RUNNING"


async def test_a_silent_node_is_first_unreachable_and_only_then_presumed_gone(
    gateway_with: Any, herk: Any, job_of: Any, eventually: Any
) -> None:
    watched = await gateway_with(herk_silence_min_seconds=1.5, reconcile_interval_seconds=0.05)
    api, job = await _launched(watched, job_of, "quiet.local")
    async with beating(herk, "herk-q", [holding(job, accepted=True)]):
        await herk.status(job, "running", seq=1, herk="herk-q")
        await eventually(lambda: _state(api, job["id"], "running"))

    async def unreachable() -> dict[str, Any] | None:
        seen = await api.job(job["id"])
        reason = seen["waiting_reason"] or {}
        return seen if reason.get("code") == "herk_node_unreachable" else None

    seen = await eventually(unreachable)
    assert seen["state"] == "running"
    assert seen["waiting_reason"]["text"].startswith("herk node herk-q unreachable for ")
    assert (await api.node("quiet.local"))["status"] == "LAUNCHING"
    await eventually(lambda: _ended(watched, job))
    assert (await api.job(job["id"]))["waiting_reason"] is None


async def test_a_late_report_of_a_cut_node_never_beats_another_nodes_success(
    store: Store,  # noqa: F811
) -> None:
    owner = await account(store)
    first = launch(owner, "moved.local")
    await store.add_launches([first])
    await store.apply_status(status(first, "running", seq=1, herk="cut"))
    # not accepted on the cut node, so the broker gave it to another: attempt 2 succeeds there
    await store.apply_status(status(first, "running", attempt=2, seq=1, herk="other"))
    done = status(first, "succeeded", attempt=2, seq=2, herk="other", exit_code=0)
    assert (await store.apply_status(done)).applied
    # the heal: the cut node's buffered events arrive, whatever they say
    lost = status(first, "interrupted", seq=2, herk="cut", reason="event bus unavailable")
    for late in (lost, status(first, "failed", seq=3, herk="cut", exit_code=1)):
        assert not (await store.apply_status(late)).applied
        assert not (await store.apply_status(late, presumed=True)).applied
    job = await store.job(owner.id, first.job.id)
    assert job is not None and (job.state, job.attempt, job.herk) == ("succeeded", 2, "other")
    assert (await store.node(owner.id, "moved.local")).status == "RUNNING"


def test_the_silence_limit_outlasts_the_bus_heartbeat() -> None:
    assert GatewayOptions().herk_silence_min_seconds >= 2 * HEARTBEAT_SECONDS
