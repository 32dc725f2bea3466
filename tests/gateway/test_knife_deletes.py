"""A knife delete names the server its create made: knife-ec2 and knife-openstack delete by
instance id, which only the create's output (``Instance ID: …``) tells. The gateway reads it from
the create's stored log when the delete is requested and passes it in the params."""

from __future__ import annotations

from typing import Any

from megam import wire

EC2_CLOUD = {
    "name": "aws",
    "spec": {"type_name": "ec2", "image": "ami-0abc1234", "flavor": "t3.micro"},
    "access": {"region": "eu-west-1"},
    "credentials": {"aws_access_key_id": "AKIA1234", "aws_secret_access_key": "secret1234"},
}
CREATE_OUTPUT = [
    "$ knife ec2 server create --config /tmp/megam-knife-x/knife.rb ...",
    "Instance ID: i-0abc1234def567890",
    "Flavor: t3.micro",
    "Bootstrapping Chef on ec2-54-251-10-12.eu-west-1.compute.amazonaws.com",
]


async def _launched_on_ec2(gateway: Any, job_of: Any) -> tuple[Any, dict[str, Any]]:
    api = await gateway.onboard()
    await api.created("/v1/predefclouds/content", EC2_CLOUD)
    [job_id] = await api.launch("vm.example.com", cloud="aws")
    return api, await job_of(api, job_id)


async def _logged(api: Any, text: str) -> bool:
    found = await api.ok("/v1/nodes/vm.example.com/logs", tail=100)
    return any(line["text"] == text for line in found["results"])


async def _delete_params(api: Any, job_requests: Any) -> dict[str, Any]:
    await api.created(
        "/v1/requests/content", {"node_name": "vm.example.com", "req_type": "delete"}
    )
    deliveries = await job_requests.wait_for(2)
    delete = wire.decode(deliveries[1].body, wire.JobRequest)
    assert delete.type == "knife.delete"
    return delete.params


class TestTheDeleteNamesTheCreatedServer:
    async def test_the_instance_id_the_create_printed_is_in_the_delete(
        self, gateway: Any, herk: Any, job_requests: Any, job_of: Any, eventually: Any
    ) -> None:
        api, create = await _launched_on_ec2(gateway, job_of)
        await herk.status(create, "running", seq=1)
        await herk.logs(create, CREATE_OUTPUT)
        await herk.status(create, "succeeded", seq=2, exit_code=0)
        await eventually(lambda: _logged(api, CREATE_OUTPUT[1]))
        await eventually(lambda: _node_running(api))

        params = await _delete_params(api, job_requests)
        assert params["instance_id"] == "i-0abc1234def567890"
        assert params["cloud"]["cctype"] == "ec2"

    async def test_a_create_that_failed_after_making_the_server_still_names_it(
        self, gateway: Any, herk: Any, job_requests: Any, job_of: Any, eventually: Any
    ) -> None:
        api, create = await _launched_on_ec2(gateway, job_of)
        await herk.status(create, "running", seq=1)
        await herk.logs(create, [*CREATE_OUTPUT, "ERROR: Net::SSH::AuthenticationFailed"])
        await herk.status(create, "failed", seq=2, exit_code=100, reason="exit code 100")
        await eventually(lambda: _logged(api, CREATE_OUTPUT[1]))

        params = await _delete_params(api, job_requests)
        assert params["instance_id"] == "i-0abc1234def567890", "the server exists and bills"

    async def test_a_create_that_made_no_server_gives_no_instance_id(
        self, gateway: Any, herk: Any, job_requests: Any, job_of: Any, eventually: Any
    ) -> None:
        api, create = await _launched_on_ec2(gateway, job_of)
        refusal = "ERROR: Aws::EC2::Errors::InstanceLimitExceeded: Your quota allows for 0 more"
        await herk.logs(create, [CREATE_OUTPUT[0], refusal])
        await herk.status(create, "failed", seq=2, exit_code=100, reason="exit code 100")
        await eventually(lambda: _logged(api, refusal))

        params = await _delete_params(api, job_requests)
        assert "instance_id" not in params  # herk lets knife-ec2 find it from the Chef node

    async def test_a_create_that_printed_no_id_gives_none(
        self, gateway: Any, herk: Any, job_requests: Any, job_of: Any, eventually: Any
    ) -> None:
        api, create = await _launched_on_ec2(gateway, job_of)
        await herk.logs(create, ["Instance ID: not an id; two words"])
        await herk.status(create, "succeeded", seq=2, exit_code=0)
        await eventually(lambda: _node_running(api))

        assert "instance_id" not in await _delete_params(api, job_requests)


async def _node_running(api: Any) -> bool:
    return (await api.node("vm.example.com"))["status"] == "RUNNING"
