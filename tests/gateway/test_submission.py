"""Starting jobs (``gateway.submission``): built sealed, stored all or nothing, then published."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from gateway import submission
from gateway.errors import AlreadyExists, Unavailable
from gateway.services import SERVICES, Services
from gateway.store.records import CloudTarget, Launch, Node
from megam import wire
from tests.gateway.records import LOCAL


def _services(gateway: Any) -> Services:
    return gateway.client.app[SERVICES]


async def _launch(svc: Services, account_id: str, name: str, cloud: CloudTarget = LOCAL) -> Launch:
    node = Node(
        id=await svc.new_id("NOD"), account_id=account_id, name=name, node_type="APP",
        status="LAUNCHING", cloud=cloud, command={}, predefs={}, defns_encrypted=None,
        created_at=time.time(), updated_at=time.time(),
    )  # fmt: skip
    job, outbox = await submission.new_job(
        svc, account_id=account_id, node_id=node.id, node_name=name, req_type="create",
        cloud=cloud, run_list=["role[web]"], correlation_id="req-1",
    )  # fmt: skip
    return Launch(node=node, job=job, outbox=outbox)


async def _account_id(gateway: Any) -> str:
    api = await gateway.tenant()
    return str((await api.ok(f"/v1/accounts/{api.email}"))["id"])


class TestSubmit:
    async def test_a_launch_is_stored_published_and_answered(
        self, gateway: Any, job_requests: Any
    ) -> None:
        svc = _services(gateway)
        launch = await _launch(svc, await _account_id(gateway), "sub.local")
        answer = await submission.submit(svc, [launch], [{"msg": "launching"}])
        assert answer.status == 201
        assert orjson.loads(answer.body) == [{"msg": "launching"}]
        stored = await svc.store.job(launch.node.account_id, launch.job.id)
        assert stored is not None and stored.published
        [delivery] = await job_requests.wait_for(1)
        assert wire.decode(delivery.body, wire.JobRequest).job_id == launch.job.id

    async def test_a_clash_stores_nothing_and_says_why(self, gateway: Any) -> None:
        svc = _services(gateway)
        account_id = await _account_id(gateway)
        await submission.submit(svc, [await _launch(svc, account_id, "twice.local")], [])
        again = [await _launch(svc, account_id, name) for name in ("fresh.local", "twice.local")]
        with pytest.raises(AlreadyExists) as refused:
            await submission.submit(svc, again, [], refused="pick another name")
        assert refused.value.more == "pick another name"
        assert await svc.store.node(account_id, "fresh.local") is None

    async def test_a_further_job_for_a_node_with_one_pending_is_refused(self, gateway: Any) -> None:
        svc = _services(gateway)
        account_id = await _account_id(gateway)
        launch = await _launch(svc, account_id, "gone.local")
        await submission.submit(svc, [launch], [])
        for expected in (201, 409):
            job, outbox = await submission.new_job(
                svc, account_id=account_id, node_id=launch.node.id, node_name="gone.local",
                req_type="delete", cloud=LOCAL, run_list=[], correlation_id="req-2",
            )  # fmt: skip
            further = submission.FurtherJob(job=job, outbox=outbox)
            if expected == 201:
                assert (await submission.submit(svc, further, [])).status == 201
            else:
                with pytest.raises(AlreadyExists, match="already in progress"):
                    await submission.submit(svc, further, [])


class TestSealing:
    async def test_the_clouds_credentials_travel_sealed(self, gateway: Any) -> None:
        svc = _services(gateway)
        secret = svc.sealer.encrypt(orjson.dumps({"aws_secret": "s3cr3t"}).decode())
        cloud = CloudTarget(
            name="aws", cctype="ec2", spec={"image": "ami-1"}, access={},
            credentials_encrypted=secret,
        )  # fmt: skip
        launch = await _launch(svc, "ACT1", "ec2.example.com", cloud)
        message = wire.decode(launch.outbox.body, wire.JobRequest)
        assert message.sealed is not None and b"s3cr3t" not in launch.outbox.body
        assert svc.sealer.unseal(message.sealed) == {"aws_secret": "s3cr3t"}

    async def test_credentials_the_gateway_cannot_read_are_a_503(self, gateway: Any) -> None:
        svc = _services(gateway)
        cloud = CloudTarget(
            name="aws", cctype="ec2", spec={}, access={}, credentials_encrypted="not a token"
        )
        with pytest.raises(Unavailable, match="credentials cannot be read"):
            await _launch(svc, "ACT1", "ec2.example.com", cloud)
