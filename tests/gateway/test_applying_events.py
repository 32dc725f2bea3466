"""What herk's events do to jobs and nodes: applied once, in order, never backwards."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from megam import topology, wire


async def state_of(api: Any, job_id: str, state: str) -> dict[str, Any] | None:
    job = await api.job(job_id)
    return job if job["state"] == state else None


class TestStatusEvents:
    async def test_a_successful_create_makes_the_node_running(
        self, gateway: Any, launched: Any, herk: Any, eventually: Any
    ) -> None:
        api, job = await launched()
        await herk.status(job, "running", seq=1, reason="worker 1 took it", herk="herk-a")
        await herk.status(job, "succeeded", seq=2, reason="converged", exit_code=0)
        done = await eventually(lambda: state_of(api, job["id"], "succeeded"))
        assert done["exit_code"] == 0
        assert done["herk"] == "herk-a"
        assert [(h["state"], h["reason"]) for h in done["history"]] == [
            ("queued", "accepted by the gateway; waiting for a herk worker"),
            ("running", "worker 1 took it"),
            ("succeeded", "converged"),
        ]
        assert (await api.node("web.local"))["status"] == "RUNNING"

    @pytest.mark.parametrize("ending", ["failed", "timed_out", "interrupted", "rejected"])
    async def test_a_create_that_does_not_succeed_makes_the_node_notrunning(
        self, launched: Any, herk: Any, eventually: Any, ending: str
    ) -> None:
        api, job = await launched()
        await herk.status(job, ending, seq=1, reason="knife said no", exit_code=1)
        await eventually(lambda: state_of(api, job["id"], ending))
        node = await api.node("web.local")
        assert node["status"] == "NOTRUNNING"
        assert node["request"]["reason"] == "knife said no"

    async def test_a_redelivered_event_changes_nothing(
        self, launched: Any, herk: Any, eventually: Any
    ) -> None:
        api, job = await launched()
        await herk.status(job, "running", seq=1, reason="first")
        await herk.status(job, "running", seq=1, reason="first")
        await herk.status(job, "running", seq=2, reason="marker")
        done = await eventually(lambda: _reason(api, job["id"], "marker"))
        assert [h["reason"] for h in done["history"]][1:] == ["first", "marker"]

    async def test_an_older_event_after_a_newer_one_is_ignored(
        self, launched: Any, herk: Any, eventually: Any
    ) -> None:
        api, job = await launched()
        await herk.status(job, "running", seq=5, reason="newer")
        await herk.status(job, "running", seq=3, reason="older")
        await herk.status(job, "running", seq=6, reason="marker")
        done = await eventually(lambda: _reason(api, job["id"], "marker"))
        assert "older" not in [h["reason"] for h in done["history"]]

    async def test_a_terminal_job_stays_terminal(
        self, launched: Any, herk: Any, eventually: Any
    ) -> None:
        api, job = await launched()
        await herk.status(job, "failed", seq=1, reason="boom", exit_code=2)
        await eventually(lambda: state_of(api, job["id"], "failed"))
        await herk.status(job, "succeeded", seq=9, reason="late", exit_code=0)
        await herk.status(job, "running", attempt=2, seq=0, reason="retry")
        # a marker on another job proves the two events above were consumed
        other_api, other = await launched("marker.local")
        await herk.status(other, "running", seq=1, reason="marker")
        await eventually(lambda: _reason(other_api, other["id"], "marker"))
        after = await api.job(job["id"])
        assert (after["state"], after["exit_code"]) == ("failed", 2)
        assert (await api.node("web.local"))["status"] == "NOTRUNNING"

    async def test_a_later_attempt_wins_over_a_higher_seq_of_an_earlier_one(
        self, launched: Any, herk: Any, eventually: Any
    ) -> None:
        api, job = await launched()
        await herk.status(job, "running", attempt=1, seq=7, reason="attempt one")
        await herk.status(job, "running", attempt=2, seq=1, reason="attempt two")
        done = await eventually(lambda: _reason(api, job["id"], "attempt two"))
        assert done["attempts"] == 2

    async def test_an_event_for_an_unknown_job_is_dropped(
        self, launched: Any, herk: Any, eventually: Any, dead_events: Any
    ) -> None:
        api, job = await launched()
        ghost = {**job, "id": "RIP1"}
        await herk.status(ghost, "running", seq=1)
        await herk.status(job, "running", seq=1, reason="marker")
        await eventually(lambda: _reason(api, job["id"], "marker"))
        assert dead_events.items == []


class TestDeletes:
    async def test_a_delete_request_queues_a_delete_job(
        self, gateway: Any, job_requests: Any
    ) -> None:
        api = await gateway.tenant()
        await api.launch("gone.local")
        [message] = await api.created(
            "/v1/requests/content", {"node_name": "gone.local", "req_type": "delete"}
        )
        assert message["msg"] == "node gone.local is being deleted"
        deliveries = await job_requests.wait_for(2)
        delete = wire.decode(deliveries[1].body, wire.JobRequest)
        assert (delete.type, delete.node, delete.params) == ("local.delete", "gone.local", {})
        assert deliveries[1].routing_key == "job.local.delete"
        requests = await api.ok("/v1/requests/gone.local")
        assert [r["req_type"] for r in requests["results"]] == ["create", "delete"]

    async def test_a_cloud_delete_carries_the_cloud_and_its_credentials(
        self, gateway: Any, job_requests: Any
    ) -> None:
        api = await gateway.onboard()
        cloud = {
            "name": "hp",
            "spec": {"type_name": "hp", "image": "img", "flavor": "small"},
            "credentials": {"hp_secret": "TOPSECRETVALUE"},
        }
        await api.created("/v1/predefclouds/content", cloud)
        await api.launch("vm.example.com", cloud="hp")
        await api.created(
            "/v1/requests/content", {"node_name": "vm.example.com", "req_type": "DELETE"}
        )
        deliveries = await job_requests.wait_for(2)
        delete = wire.decode(deliveries[1].body, wire.JobRequest)
        assert delete.type == "knife.delete"
        assert delete.params["cloud"]["cctype"] == "hp"
        assert "run_list" not in delete.params
        assert gateway.sealer.unseal(delete.sealed) == {"hp_secret": "TOPSECRETVALUE"}

    async def test_a_succeeded_delete_makes_the_node_deleted_and_frees_its_name(
        self, launched: Any, herk: Any, eventually: Any, job_of: Any
    ) -> None:
        api, create = await launched("once.local")
        [message] = await api.created(
            "/v1/requests/content", {"node_name": "once.local", "req_type": "delete"}
        )
        delete = await job_of(api, message["job_id"])
        await herk.status(delete, "succeeded", seq=1, exit_code=0)
        await eventually(lambda: _node_status(api, "once.local", "DELETED"))
        # a late outcome of the create cannot bring the node back
        await herk.status(create, "succeeded", seq=1, exit_code=0)
        await eventually(lambda: state_of(api, create["id"], "succeeded"))
        assert (await api.node("once.local"))["status"] == "DELETED"
        [relaunched] = await api.launch("once.local")
        assert (await api.node("once.local"))["request"]["req_id"] == relaunched

    async def test_a_launching_node_can_be_deleted(self, gateway: Any) -> None:
        api = await gateway.tenant()
        await api.launch("slow.local")
        response = await api.post(
            "/v1/requests/content", {"node_name": "slow.local", "req_type": "delete"}
        )
        assert response.status == 201

    async def test_a_failed_delete_leaves_the_status_alone(
        self, launched: Any, herk: Any, eventually: Any, job_of: Any
    ) -> None:
        api, create = await launched("stuck.local")
        await herk.status(create, "succeeded", seq=1)
        await eventually(lambda: _node_status(api, "stuck.local", "RUNNING"))
        [message] = await api.created(
            "/v1/requests/content", {"node_name": "stuck.local", "req_type": "delete"}
        )
        delete = await job_of(api, message["job_id"])
        await herk.status(delete, "failed", seq=1, reason="cloud API down", exit_code=1)
        await eventually(lambda: state_of(api, delete["id"], "failed"))
        assert (await api.node("stuck.local"))["status"] == "RUNNING"
        again = await api.post(
            "/v1/requests/content", {"node_name": "stuck.local", "req_type": "delete"}
        )
        assert again.status == 201

    async def test_a_second_delete_while_one_is_pending_is_a_409(self, gateway: Any) -> None:
        api = await gateway.tenant()
        await api.launch("twice.local")
        body = {"node_name": "twice.local", "req_type": "delete"}
        await api.created("/v1/requests/content", body)
        response = await api.post("/v1/requests/content", body)
        assert response.status == 409
        assert "already in progress" in (await response.json())["msg"]

    async def test_deleting_an_unknown_node_is_404(self, gateway: Any) -> None:
        api = await gateway.tenant()
        response = await api.post(
            "/v1/requests/content", {"node_name": "nope.local", "req_type": "delete"}
        )
        assert response.status == 404

    async def test_only_delete_requests_are_taken(self, gateway: Any) -> None:
        api = await gateway.tenant()
        await api.launch("x.local")
        response = await api.post(
            "/v1/requests/content", {"node_name": "x.local", "req_type": "reboot"}
        )
        assert response.status == 400


class TestLogAndMetricEvents:
    async def test_log_lines_are_stored_once_even_when_redelivered(
        self, launched: Any, herk: Any, eventually: Any
    ) -> None:
        api, job = await launched()
        await herk.logs(job, ["one", "two"])
        await herk.logs(job, ["one", "two"])
        await herk.logs(job, ["three"], first_seq=2)
        lines = await eventually(lambda: _lines(api, "web.local", 3))
        assert [line["text"] for line in lines] == ["one", "two", "three"]
        await herk.logs(job, ["two again"], first_seq=1)
        await herk.logs(job, ["four"], first_seq=3)
        lines = await eventually(lambda: _lines(api, "web.local", 4))
        assert [line["text"] for line in lines] == ["one", "two", "three", "four"]

    async def test_metrics_are_kept_per_node(
        self, launched: Any, herk: Any, eventually: Any
    ) -> None:
        api, job = await launched()
        at = time.time()
        event = wire.MetricEvent(
            node="web.local", account=job["account"], samples={"cpu_system": 0.5}, at=at
        )
        for _ in range(2):  # a duplicate sample is kept once
            await herk.publish(topology.metric_key("web.local"), wire.encode(event))
        samples = await eventually(lambda: _metrics(api, "web.local"))
        assert [(s["name"], s["value"]) for s in samples] == [("cpu_system", 0.5)]

    async def test_heartbeats_show_the_cluster_to_operators(
        self, launched: Any, herk: Any, eventually: Any, ops: Any
    ) -> None:
        _, job = await launched()
        beat = wire.Heartbeat(
            herk="herk-1",
            workers=4,
            busy=1,
            inflight=[job["id"], "RIP999"],
            version="0.1.0",
            started_at=time.time() - 60,
            at=time.time(),
        )
        await herk.publish(topology.heartbeat_key("herk-1"), wire.encode(beat))
        cluster = await eventually(lambda: _cluster(ops))
        [node] = cluster["results"]
        assert (node["name"], node["workers"], node["busy"]) == ("herk-1", 4, 1)
        assert (node["alive"], node["uptime_seconds"] >= 60) == (True, True)
        assert node["inflight"] == [job["id"], "RIP999"]


class TestMalformedEvents:
    @pytest.mark.parametrize(
        ("routing_key", "body", "reason"),
        [
            ("status.web.local", b"{not json", "invalid JSON"),
            ("status.web.local", b"[1, 2]", "expected a JSON object"),
            ("status.web.local", b'{"v": 99}', "unsupported schema version 99"),
            ("log.RIP1", b'{"v": 1, "job_id": "RIP1"}', "invalid LogEvent"),
            ("heartbeat.h", b'{"v": 1, "herk": 7}', "invalid Heartbeat"),
        ],
    )
    async def test_go_to_the_dead_letter_queue_with_the_reason(
        self, herk: Any, dead_events: Any, routing_key: str, body: bytes, reason: str
    ) -> None:
        await herk.publish(routing_key, body)
        [dead] = await dead_events.wait_for(1)
        assert dead.body == body
        assert reason in dead.headers[wire.REASON_HEADER]
        assert dead.headers[wire.ROUTING_KEY_HEADER] == routing_key

    async def test_the_consumer_keeps_going_after_a_bad_message(
        self, launched: Any, herk: Any, eventually: Any, dead_events: Any
    ) -> None:
        api, job = await launched()
        await herk.publish("status.web.local", b"garbage")
        await herk.status(job, "running", seq=1, reason="still consuming")
        await eventually(lambda: _reason(api, job["id"], "still consuming"))
        assert len(await dead_events.wait_for(1)) == 1

    async def test_an_event_naming_another_account_is_refused(
        self, launched: Any, herk: Any, dead_events: Any
    ) -> None:
        victim_api, victim_job = await launched("victim.local")
        _, intruder_job = await launched("intruder.local")
        await herk.status(victim_job, "succeeded", seq=1, account=intruder_job["account"])
        [dead] = await dead_events.wait_for(1)
        assert "do not own job" in dead.headers[wire.REASON_HEADER]
        assert (await victim_api.job(victim_job["id"]))["state"] == "queued"

    async def test_a_bad_log_event_is_dead_lettered_whole(
        self, launched: Any, herk: Any, dead_events: Any
    ) -> None:
        _, job = await launched()
        body = orjson.dumps(
            {
                "v": 1,
                "job_id": job["id"],
                "node": "web.local",
                "account": job["account"],
                "attempt": 1,
                "lines": [[0, "stdout", "ok", 1.0], ["x"]],
            }
        )
        await herk.publish(topology.log_key(job["id"]), body)
        [dead] = await dead_events.wait_for(1)
        assert "invalid LogEvent" in dead.headers[wire.REASON_HEADER]


async def _reason(api: Any, job_id: str, reason: str) -> dict[str, Any] | None:
    job = await api.job(job_id)
    return job if job["reason"] == reason else None


async def _node_status(api: Any, name: str, status: str) -> bool:
    return (await api.node(name))["status"] == status


async def _lines(api: Any, node: str, count: int) -> list[dict[str, Any]] | None:
    lines = (await api.ok(f"/v1/nodes/{node}/logs"))["results"]
    return lines if len(lines) >= count else None


async def _metrics(api: Any, node: str) -> list[dict[str, Any]]:
    return (await api.ok(f"/v1/nodes/{node}/metrics"))["results"]


async def _cluster(api: Any) -> dict[str, Any] | None:
    cluster = await api.ok("/v1/cluster")
    return cluster if cluster["results"] else None
