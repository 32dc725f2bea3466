"""``POST /v1/jobs/<id>/cancel``: a job that never reached the queue ends cancelled here; any
other unfinished job gets a ``cancel`` command on ``megam.control`` (``control.all``) for herk."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.services import SERVICES
from megam import topology, wire


@pytest.fixture
async def control_commands(gateway: Any, collector: Any) -> Any:
    """Every command sent to all herk nodes, as a herk node would receive it."""
    commands = collector()
    await gateway.bus.consume_temporary([(topology.CONTROL.name, "control.all")], commands)
    return commands


class TestCancellingAQueuedJob:
    async def test_herk_is_told_and_the_job_says_it_waits_for_the_cancel(
        self, launched: Any, control_commands: Any, herk: Any, eventually: Any
    ) -> None:
        api, job = await launched()
        response = await api.post(f"/v1/jobs/{job['id']}/cancel", {})
        assert response.status == 202, await response.text()
        [delivery] = await control_commands.wait_for(1)
        command = wire.decode(delivery.body, wire.ControlCommand)
        assert (command.command, command.job_id, command.requested_by) == (
            "cancel",
            job["id"],
            api.email,
        )
        waiting = await api.job(job["id"])
        assert waiting["state"] == "queued"
        assert waiting["waiting_reason"]["code"] == "cancel_requested"
        assert waiting["history"][-1]["reason"].startswith(f"cancel requested by {api.email}")

        await herk.status(job, "cancelled", seq=2, reason="cancelled before it started")

        async def cancelled() -> Any:
            found = await api.job(job["id"])
            return found if found["state"] == "cancelled" else None

        await eventually(cancelled)
        assert (await api.node(job["node_name"]))["status"] == "NOTRUNNING"

    async def test_one_the_broker_never_had_ends_cancelled_and_never_reaches_the_queue(
        self, gateway: Any
    ) -> None:
        api = await gateway.tenant()
        await gateway.bus.close()  # the outbox keeps the launch
        response = await api.post(
            "/v1/nodes/content", {"node_name": "never.local", "predefcloud": "local"}
        )
        info, _ = await response.json()
        response = await api.post(f"/v1/jobs/{info['job_id']}/cancel", {})
        assert response.status == 200, await response.text()
        job = await api.job(info["job_id"])
        assert (job["state"], job["waiting_reason"]) == ("cancelled", None)
        assert job["reason"].startswith(f"cancelled by {api.email} before it reached the queue")
        assert await gateway.client.app[SERVICES].store.outbox_size() == 0
        assert (await api.node("never.local"))["status"] == "NOTRUNNING"


class TestCancellingARunningJob:
    async def test_the_cancel_is_sent_and_recorded_while_it_runs(
        self, launched: Any, control_commands: Any, herk: Any, eventually: Any
    ) -> None:
        api, job = await launched()
        await herk.status(job, "running", seq=1, herk="herk-1")

        async def running() -> Any:
            found = await api.job(job["id"])
            return found if found["state"] == "running" else None

        await eventually(running)
        response = await api.post(f"/v1/jobs/{job['id']}/cancel", {})
        assert response.status == 202
        await control_commands.wait_for(1)
        found = await api.job(job["id"])
        assert (found["state"], found["waiting_reason"]["code"]) == ("running", "cancel_requested")


class TestWhatCannotBeCancelled:
    async def test_a_finished_job_is_409_and_unchanged(
        self, launched: Any, herk: Any, eventually: Any
    ) -> None:
        api, job = await launched()
        await herk.status(job, "succeeded", seq=2)

        async def done() -> Any:
            found = await api.job(job["id"])
            return found if found["state"] == "succeeded" else None

        before = await eventually(done)
        response = await api.post(f"/v1/jobs/{job['id']}/cancel", {})
        assert response.status == 409
        assert (await response.json())["msg"] == f"job {job['id']} has already ended (succeeded)"
        assert await api.job(job["id"]) == before

    async def test_an_unknown_job_is_404(self, gateway: Any) -> None:
        api = await gateway.tenant()
        response = await api.post("/v1/jobs/RIP123/cancel", {})
        assert response.status == 404
