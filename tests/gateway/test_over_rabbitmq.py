"""The gateway on the real broker: jobs reach herk's queue, events come back, poison is parked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from megam import topology, wire
from megam.bus.amqp import AmqpBus


@pytest.fixture
async def rabbit(
    amqp_url: str, aiohttp_client: Any, make_app: Any, signed: Any
) -> AsyncIterator[dict[str, Any]]:
    bus = AmqpBus(amqp_url, publish_timeout=5)
    herk_side = AmqpBus(amqp_url)  # herk's own connection: it shares nothing with the gateway
    await bus.connect()
    await herk_side.connect()
    client = await aiohttp_client(make_app(bus))
    onboarded = await client.post("/v1/accounts/content", json={"email": "rmq@example.com"})
    account = await onboarded.json()
    api = signed(client, account["email"], account["api_key"])
    await api.add_local_cloud()
    yield {"api": api, "herk": herk_side, "account": account["id"]}
    await client.close()
    await herk_side.close()
    await bus.close()


async def test_a_launch_reaches_herk_and_its_events_come_back(
    rabbit: dict[str, Any], collector: Any, eventually: Any
) -> None:
    api, herk = rabbit["api"], rabbit["herk"]
    requests = collector()
    await herk.consume(topology.HERK_REQUESTS.name, requests, prefetch=10)
    [job_id] = await api.launch("rabbit.local")
    [delivery] = await requests.wait_for(1)
    request = wire.decode(delivery.body, wire.JobRequest)
    assert (request.job_id, request.type, request.account) == (
        job_id,
        "local.create",
        rabbit["account"],
    )
    assert delivery.message_id == job_id

    lines = wire.LogEvent(
        job_id=job_id,
        node="rabbit.local",
        account=request.account,
        attempt=1,
        lines=[wire.LogLine(seq=0, stream="stdout", text="hello from herk", at=time.time())],
    )
    done = wire.StatusEvent(
        job_id=job_id,
        node="rabbit.local",
        account=request.account,
        type="local.create",
        state=wire.JobState.SUCCEEDED,
        seq=1,
        exit_code=0,
    )
    await herk.publish(topology.EVENTS.name, topology.log_key(job_id), wire.encode(lines))
    await herk.publish(topology.EVENTS.name, topology.status_key("rabbit.local"), wire.encode(done))

    async def running() -> bool:
        return (await api.node("rabbit.local"))["status"] == "RUNNING"

    await eventually(running, timeout=20)
    page = await api.ok("/v1/nodes/rabbit.local/logs")
    assert [line["text"] for line in page["results"]] == ["hello from herk"]


async def test_a_malformed_event_is_parked_with_its_reason(
    rabbit: dict[str, Any], collector: Any
) -> None:
    herk = rabbit["herk"]
    dead = collector()
    await herk.consume(topology.GATEWAY_EVENTS_DEAD.name, dead, prefetch=10)
    await herk.publish(topology.EVENTS.name, "status.bad.local", b"{oops", message_id="m-1")
    [parked] = await dead.wait_for(1, timeout=20)
    assert parked.body == b"{oops"
    assert parked.message_id == "m-1"
    assert parked.headers[wire.REASON_HEADER].startswith("invalid JSON")
    assert await herk.queue_depth(topology.GATEWAY_EVENTS.name) == 0


async def test_dead_letters_are_peeked_then_requeued_on_the_real_broker(
    rabbit: dict[str, Any], collector: Any, signed: Any, eventually: Any
) -> None:
    api, herk = rabbit["api"], rabbit["herk"]
    onboarded = await api.client.post("/v1/accounts/content", json={"email": "ops@example.com"})
    account = await onboarded.json()
    ops = signed(api.client, account["email"], account["api_key"])
    bodies = {}
    for job_id in ("RIP11", "RIP12"):
        request = wire.JobRequest(
            job_id=job_id, type="local.create", node="d.local", account="ACT1", correlation_id="c"
        )
        bodies[job_id] = wire.encode(request)
        await herk.publish(
            topology.DEAD.name,
            topology.HERK_REQUESTS.name,
            bodies[job_id],
            headers={wire.REASON_HEADER: f"reason of {job_id}"},
        )
    listed = (await ops.ok("/v1/cluster/deadletters"))["results"]
    assert sorted((d["id"], d["reason"]) for d in listed) == [
        ("RIP11", "reason of RIP11"),
        ("RIP12", "reason of RIP12"),
    ]

    async def both_back() -> bool:  # the peek hands them back; the queue counts them soon after
        return (await ops.ok("/v1/cluster"))["dead_letters"] == 2

    await eventually(both_back)

    requests = collector()
    await herk.consume(topology.HERK_REQUESTS.name, requests, prefetch=10)
    response = await ops.post("/v1/cluster/deadletters/requeue", {"ids": ["RIP12"]})
    assert response.status == 200, await response.text()
    [delivery] = await requests.wait_for(1)
    assert (delivery.body, delivery.routing_key) == (bodies["RIP12"], "job.local.create")
    left = (await ops.ok("/v1/cluster/deadletters"))["results"]
    assert [d["id"] for d in left] == ["RIP11"]


async def test_an_action_beside_a_listing_still_finds_its_letter(
    rabbit: dict[str, Any], signed: Any
) -> None:
    api, herk = rabbit["api"], rabbit["herk"]
    onboarded = await api.client.post("/v1/accounts/content", json={"email": "ops@example.com"})
    account = await onboarded.json()
    ops = signed(api.client, account["email"], account["api_key"])
    request = wire.JobRequest(
        job_id="RIP21", type="local.create", node="d.local", account="ACT1", correlation_id="c"
    )
    await herk.publish(topology.DEAD.name, topology.HERK_REQUESTS.name, wire.encode(request))

    async def requeue_while_listed() -> Any:
        await asyncio.sleep(0.05)  # the listing holds the letter by now
        return await ops.post("/v1/cluster/deadletters/requeue", {"ids": ["RIP21"]})

    listing, requeued = await asyncio.gather(
        ops.ok("/v1/cluster/deadletters"), requeue_while_listed()
    )

    assert [d["id"] for d in listing["results"]] == ["RIP21"]
    assert requeued.status == 200, await requeued.text()
    [answer] = await requeued.json()
    assert answer["ids"] == ["RIP21"]
    assert (await ops.ok("/v1/cluster/deadletters"))["results"] == []


async def test_a_cancel_reaches_every_herk_node_on_the_real_broker(
    rabbit: dict[str, Any], collector: Any
) -> None:
    api, herk = rabbit["api"], rabbit["herk"]
    commands = collector()
    await herk.consume_temporary([(topology.CONTROL.name, "control.all")], commands)
    [job_id] = await api.launch("cancel.local")
    response = await api.post(f"/v1/jobs/{job_id}/cancel", {})
    assert response.status == 202, await response.text()
    [delivery] = await commands.wait_for(1)
    command = wire.decode(delivery.body, wire.ControlCommand)
    assert (command.command, command.job_id) == ("cancel", job_id)
