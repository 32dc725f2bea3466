"""Operators (``MEGAM_ADMIN_EMAILS``) see the cluster, drain and scale herk nodes, and re-queue or
discard dead-lettered jobs; tenants get 403 (``test_tenant_isolation`` probes every route)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gateway.dead_letters import body_key
from megam import topology, wire

GARBAGE = b"{not json"


def _beat(name: str) -> wire.Heartbeat:
    return wire.Heartbeat(
        herk=name,
        workers=3,
        busy=0,
        inflight=[],
        version="test",
        started_at=time.time() - 10,
        at=time.time(),
        interval=5.0,
    )


@pytest.fixture
async def known_herk(gateway: Any, herk: Any, ops: Any, eventually: Any) -> str:
    await herk.publish(topology.heartbeat_key("herk-1"), wire.encode(_beat("herk-1")))

    async def seen() -> Any:
        return (await ops.ok("/v1/cluster"))["results"]

    await eventually(seen)
    return "herk-1"


def _request(job_id: str) -> wire.JobRequest:
    return wire.JobRequest(
        job_id=job_id,
        type="local.create",
        node="dead.local",
        account="ACT1",
        correlation_id="c",
        params={"run_list": []},
    )


async def _dead_letter(bus: Any, body: bytes, reason: str) -> None:
    await bus.publish(
        topology.DEAD.name,
        topology.HERK_REQUESTS.name,
        body,
        headers={wire.REASON_HEADER: reason},
    )


class TestSeeingTheCluster:
    async def test_nodes_queue_depth_and_dead_letters(
        self, gateway: Any, ops: Any, known_herk: str
    ) -> None:
        tenant = await gateway.tenant()
        await tenant.launch("waiting.local")
        await _dead_letter(gateway.bus, wire.encode(_request("RIP1")), "unknown job type")
        cluster = await ops.ok("/v1/cluster")
        [node] = cluster["results"]
        assert (node["name"], node["workers"], node["alive"]) == (known_herk, 3, True)
        assert (cluster["queue_depth"], cluster["dead_letters"], cluster["alive"]) == (1, 1, 1)

    async def test_the_operator_is_named_admin_at_onboarding(self, ops: Any) -> None:
        account = await ops.ok(f"/v1/accounts/{ops.email}")
        assert account["authority"] == "admin"


class TestSteeringHerkNodes:
    @pytest.fixture
    async def node_commands(self, gateway: Any, collector: Any, known_herk: str) -> Any:
        commands = collector()
        key = topology.control_key(known_herk)
        await gateway.bus.consume_temporary([(topology.CONTROL.name, key)], commands)
        return commands

    async def test_drain_is_sent_to_that_node_only(
        self, ops: Any, known_herk: str, node_commands: Any
    ) -> None:
        response = await ops.post(f"/v1/cluster/{known_herk}/drain", {})
        assert response.status == 202, await response.text()
        [delivery] = await node_commands.wait_for(1)
        command = wire.decode(delivery.body, wire.ControlCommand)
        assert (command.command, command.requested_by) == ("drain", ops.email)
        assert delivery.routing_key == "control.herk-1"

    async def test_scale_carries_the_worker_count(
        self, ops: Any, known_herk: str, node_commands: Any
    ) -> None:
        response = await ops.post(f"/v1/cluster/{known_herk}/scale", {"workers": 8})
        assert response.status == 202
        [delivery] = await node_commands.wait_for(1)
        command = wire.decode(delivery.body, wire.ControlCommand)
        assert (command.command, command.workers) == ("scale", 8)

    @pytest.mark.parametrize("body", [{"workers": 0}, {"workers": "8"}, {"workers": 8, "x": 1}, {}])
    async def test_a_bad_worker_count_is_400(self, ops: Any, known_herk: str, body: Any) -> None:
        response = await ops.post(f"/v1/cluster/{known_herk}/scale", body)
        assert response.status == 400

    async def test_a_node_that_never_beat_is_404(self, ops: Any) -> None:
        response = await ops.post("/v1/cluster/nobody/drain", {})
        assert response.status == 404


class TestDeadLetters:
    @pytest.fixture
    async def letters(self, gateway: Any) -> None:
        await _dead_letter(gateway.bus, wire.encode(_request("RIP1")), "unknown job type x")
        await _dead_letter(gateway.bus, wire.encode(_request("RIP2")), "gave up after 3 attempts")
        await _dead_letter(gateway.bus, GARBAGE, "invalid JSON: unexpected character")

    async def test_listing_peeks_with_the_reasons(self, ops: Any, letters: None) -> None:
        first = (await ops.ok("/v1/cluster/deadletters"))["results"]
        again = (await ops.ok("/v1/cluster/deadletters"))["results"]

        def by_id(letters: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return sorted(letters, key=lambda d: d["id"])

        assert by_id(first) == by_id(again)  # a peek takes nothing away
        assert sorted((d["id"], d["reason"], d["requeueable"]) for d in first) == sorted(
            [
                (body_key(GARBAGE), "invalid JSON: unexpected character", False),
                ("RIP1", "unknown job type x", True),
                ("RIP2", "gave up after 3 attempts", True),
            ]
        )

    async def test_requeue_publishes_the_original_body_to_its_job_key(
        self, gateway: Any, ops: Any, letters: None, job_requests: Any
    ) -> None:
        response = await ops.post("/v1/cluster/deadletters/requeue", {"ids": ["RIP2"]})
        assert response.status == 200, await response.text()
        assert (await response.json())[0]["ids"] == ["RIP2"]
        [delivery] = await job_requests.wait_for(1)
        assert delivery.body == wire.encode(_request("RIP2"))
        assert delivery.routing_key == topology.request_key("local.create")
        left = (await ops.ok("/v1/cluster/deadletters"))["results"]
        assert sorted(d["id"] for d in left) == sorted([body_key(GARBAGE), "RIP1"])

    async def test_discard_drops_them_and_garbage_can_only_be_discarded(
        self, ops: Any, letters: None
    ) -> None:
        garbage = body_key(GARBAGE)
        refused = await ops.post("/v1/cluster/deadletters/requeue", {"ids": [garbage]})
        assert f"only discardable: {garbage}" in (await refused.json())[0]["more"]
        response = await ops.post("/v1/cluster/deadletters/discard", {"all": True})
        assert (await response.json())[0]["more"] == "3 discarded"
        assert (await ops.ok("/v1/cluster/deadletters"))["results"] == []

    async def test_naming_nothing_is_400(self, ops: Any) -> None:
        response = await ops.post("/v1/cluster/deadletters/discard", {})
        assert response.status == 400
