"""Launching nodes: the short form and Megam's node JSON, fan-out, and the job sent to herk."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from megam import wire
from megam.params import KNIFE_RB_REFUSED

EC2_CLOUD = {
    "name": "aws",
    "spec": {"type_name": "ec2", "groups": "megam", "image": "ami-1", "flavor": "t2.micro"},
    "access": {"ssh_key": "megam_ec2", "ssh_user": "ubuntu", "zone": "us-east-1a"},
    "credentials": {"aws_access_key_id": "AKIAIDEXAMPLE", "aws_secret_access_key": "wJalrXUtnFEMI"},
}

NODE_JSON = {  # what Megam's portal posted (megam_api make_node.rb), trimmed of empty parts
    "node_name": "heightens.megam.co",
    "node_type": "APP",
    "noofinstances": 2,
    "req_type": "create",
    "command": {
        "systemprovider": {"provider": {"prov": "chef"}},
        "compute": {
            "cctype": "ec2",
            "cc": {"groups": "megam", "image": "ami-d783cd85", "flavor": "m1.small"},
            "access": {
                "ssh_key": "megam_ec2",
                "identity_file": "~/.ssh/megam_ec2.pem",
                "ssh_user": "ubuntu",
                "region": "ap-southeast-1",
            },
        },
        "cloudtool": {
            "chef": {
                "command": "knife",
                "plugin": "ec2 server create -c",
                "run_list": "'role[rails]'",
                "name": "-N heightens.megam.co",
            }
        },
    },
    "predefs": {
        "name": "rails",
        "scm": "https://github.com/x/y.git",
        "war": "",
        "db": "",
        "queue": "",
    },
    "appdefns": {"timetokill": "", "metered": "", "logging": "", "runtime_exec": ""},
    "boltdefns": {},
    "appreq": {},
    "boltreq": {},
}


def decoded(delivery: Any) -> wire.JobRequest:
    return wire.decode(delivery.body, wire.JobRequest)


class TestShortForm:
    async def test_a_local_launch_stores_the_node_and_queues_a_local_create(
        self, gateway: Any, job_requests: Any
    ) -> None:
        api = await gateway.tenant()
        [message] = await api.created(
            "/v1/nodes/content",
            {"node_name": "web.local", "predefcloud": "local", "run_list": ["role[web]"]},
        )
        assert (message["code"], message["msg_type"]) == (201, "info")
        assert message["json_claz"] == "Megam::Error"  # Megam's message class, info or error
        assert message["node_name"] == "web.local"
        [delivery] = await job_requests.wait_for(1)
        request = decoded(delivery)
        account = await api.ok(f"/v1/accounts/{api.email}")
        assert request == wire.JobRequest(
            job_id=message["job_id"],
            type="local.create",
            node="web.local",
            account=account["id"],
            correlation_id=request.correlation_id,
            params={"run_list": ["role[web]"]},
            sealed=None,
            created_at=request.created_at,
        )
        assert delivery.routing_key == "job.local.create"
        assert delivery.message_id == message["job_id"]
        assert delivery.correlation_id == request.correlation_id != ""
        node = await api.node("web.local")
        assert node["status"] == "LAUNCHING"
        assert node["id"] == message["node_id"]
        assert node["request"]["req_id"] == message["job_id"]

    async def test_the_request_id_links_http_and_job(self, gateway: Any, job_requests: Any) -> None:
        api = await gateway.tenant()
        body = orjson.dumps({"node_name": "trace.local", "predefcloud": "local"})
        headers = {**api.headers("/v1/nodes/content", body), "X-Request-Id": "req-42"}
        response = await gateway.client.post("/v1/nodes/content", data=body, headers=headers)
        assert response.headers["X-Request-Id"] == "req-42"
        [delivery] = await job_requests.wait_for(1)
        assert decoded(delivery).correlation_id == "req-42"

    async def test_a_cloud_launch_queues_knife_create_with_sealed_credentials(
        self, gateway: Any, job_requests: Any
    ) -> None:
        api = await gateway.onboard()
        await api.created("/v1/predefclouds/content", EC2_CLOUD)
        await api.launch("app.example.com", cloud="aws", run_list="role[rails], recipe[nginx]")
        [delivery] = await job_requests.wait_for(1)
        request = decoded(delivery)
        assert delivery.routing_key == "job.knife.create"
        assert request.type == "knife.create"
        assert request.params == {
            "cloud": {
                "cctype": "ec2",
                "spec": {
                    "groups": "megam",
                    "image": "ami-1",
                    "flavor": "t2.micro",
                    "tenant_id": "",
                },
                "access": {
                    "ssh_key": "megam_ec2",
                    "identity_file": "",
                    "ssh_user": "ubuntu",
                    "vault_location": "",
                    "sshpub_location": "",
                    "zone": "us-east-1a",
                    "region": "",
                },
            },
            "run_list": ["role[rails]", "recipe[nginx]"],
        }
        assert b"wJalrXUtnFEMI" not in delivery.body
        assert request.sealed is not None
        assert gateway.sealer.unseal(request.sealed) == EC2_CLOUD["credentials"]

    async def test_a_knife_rb_path_on_the_herk_host_is_refused_with_the_reason(
        self, gateway: Any
    ) -> None:
        api = await gateway.onboard()
        await api.created("/v1/predefclouds/content", EC2_CLOUD)
        response = await api.post(
            "/v1/nodes/content",
            {"node_name": "kn.example.com", "predefcloud": "aws", "knife_rb": "/srv/knife.rb"},
        )
        assert response.status == 400
        assert KNIFE_RB_REFUSED in (await response.json())["msg"]

    async def test_the_command_is_built_from_the_cloud_tool_template(self, gateway: Any) -> None:
        api = await gateway.onboard()
        await api.created("/v1/predefclouds/content", EC2_CLOUD)
        await api.launch("cmd.example.com", cloud="aws", run_list=["role[rails]"])
        [job] = (await api.ok("/v1/requests/cmd.example.com"))["results"]
        assert job["command"]["type"] == "knife.create"
        node = await api.node("cmd.example.com")
        assert node["cloud"] == {"name": "aws", "cctype": "ec2"}
        assert node["predefcloud"] == "aws"

    async def test_noofinstances_fans_out_with_numbered_names(
        self, gateway: Any, job_requests: Any
    ) -> None:
        api = await gateway.tenant()
        jobs = await api.launch("web.local", noofinstances=3)
        assert len(set(jobs)) == 3
        deliveries = await job_requests.wait_for(3)
        assert sorted(decoded(d).node for d in deliveries) == [
            "web1.local",
            "web2.local",
            "web3.local",
        ]
        nodes = await api.ok("/v1/nodes")
        assert nodes["json_claz"] == "Megam::NodeCollection"
        assert sorted(n["node_name"] for n in nodes["results"]) == [
            "web1.local",
            "web2.local",
            "web3.local",
        ]
        assert len({n["id"] for n in nodes["results"]}) == 3

    async def test_a_comma_separated_run_list_is_accepted(
        self, gateway: Any, job_requests: Any
    ) -> None:
        api = await gateway.tenant()
        await api.launch("rl.local", run_list="'role[a]','recipe[b::c]'")
        [delivery] = await job_requests.wait_for(1)
        assert decoded(delivery).params == {"run_list": ["role[a]", "recipe[b::c]"]}

    async def test_an_unknown_cloud_is_404_with_how_to_create_it(self, gateway: Any) -> None:
        api = await gateway.onboard()
        response = await api.post(
            "/v1/nodes/content", {"node_name": "a.local", "predefcloud": "local"}
        )
        assert response.status == 404
        error = await response.json()
        assert error["msg"] == "you have no predef cloud named local"
        assert "POST /v1/predefclouds/content" in error["more"]

    async def test_a_name_in_use_is_a_409_and_launches_nothing(
        self, gateway: Any, job_requests: Any
    ) -> None:
        api = await gateway.tenant()
        await api.launch("taken.local")
        response = await api.post(
            "/v1/nodes/content",
            {"node_name": "free.local", "predefcloud": "local", "noofinstances": 1},
        )
        assert response.status == 201  # free1.local
        clash = await api.post(
            "/v1/nodes/content", {"node_name": "taken.local", "predefcloud": "local"}
        )
        assert clash.status == 409
        assert "taken.local already exists" in (await clash.json())["msg"]
        await job_requests.wait_for(2)
        assert len(job_requests.items) == 2

    async def test_a_fan_out_that_clashes_launches_none_of_its_nodes(self, gateway: Any) -> None:
        api = await gateway.tenant()
        await api.launch("db2.local")
        response = await api.post(
            "/v1/nodes/content",
            {"node_name": "db.local", "predefcloud": "local", "noofinstances": 3},
        )
        assert response.status == 409
        names = [n["node_name"] for n in (await api.ok("/v1/nodes"))["results"]]
        assert names == ["db2.local"]

    async def test_unknown_fields_in_the_short_form_are_refused(self, gateway: Any) -> None:
        api = await gateway.tenant()
        response = await api.post(
            "/v1/nodes/content",
            {"node_name": "a.local", "predefcloud": "local", "run_lst": ["role[x]"]},
        )
        assert response.status == 400
        assert "unknown field `run_lst`" in (await response.json())["more"]

    async def test_a_bad_run_list_entry_is_refused(self, gateway: Any) -> None:
        api = await gateway.tenant()
        response = await api.post(
            "/v1/nodes/content",
            {"node_name": "a.local", "predefcloud": "local", "run_list": "role[ok], rm -rf /"},
        )
        assert response.status == 400
        assert "'rm -rf /' is not a Chef run-list entry" in (await response.json())["msg"]

    async def test_a_knife_rb_that_is_no_absolute_path_is_refused(self, gateway: Any) -> None:
        api = await gateway.onboard()
        await api.created("/v1/predefclouds/content", EC2_CLOUD)
        response = await api.post(
            "/v1/nodes/content",
            {"node_name": "kn.example.com", "predefcloud": "aws", "knife_rb": "knife.rb"},
        )
        assert response.status == 400
        assert "$.knife_rb" in (await response.json())["more"]

    async def test_a_body_with_neither_form_says_what_is_expected(self, gateway: Any) -> None:
        api = await gateway.tenant()
        response = await api.post("/v1/nodes/content", {"node_name": "a.local"})
        assert response.status == 400
        assert "predefcloud (short form) or command" in (await response.json())["msg"]


class TestMegamNodeJson:
    async def test_the_original_clients_json_launches_each_instance(
        self, gateway: Any, job_requests: Any
    ) -> None:
        api = await gateway.onboard()
        messages = await api.created("/v1/nodes/content", NODE_JSON)
        assert [m["node_name"] for m in messages] == [
            "heightens1.megam.co",
            "heightens2.megam.co",
        ]
        deliveries = await job_requests.wait_for(2)
        requests = sorted((decoded(d) for d in deliveries), key=lambda r: r.node)
        assert [r.type for r in requests] == ["knife.create", "knife.create"]
        assert requests[0].params == {
            "cloud": {
                "cctype": "ec2",
                "spec": {"groups": "megam", "image": "ami-d783cd85", "flavor": "m1.small"},
                "access": {
                    "ssh_key": "megam_ec2",
                    "identity_file": "~/.ssh/megam_ec2.pem",
                    "ssh_user": "ubuntu",
                    "vault_location": "",
                    "sshpub_location": "",
                    "zone": "",
                    "region": "ap-southeast-1",
                },
            },
            "run_list": ["role[rails]"],
        }
        node = await api.node("heightens2.megam.co")
        assert node["predefs"]["name"] == "rails"
        assert node["node_type"] == "APP"

    async def test_a_local_cctype_in_node_json_is_a_local_create(
        self, gateway: Any, job_requests: Any
    ) -> None:
        api = await gateway.onboard()
        body = orjson.loads(orjson.dumps(NODE_JSON))
        body["command"]["compute"]["cctype"] = "local"
        body["noofinstances"] = 1
        await api.created("/v1/nodes/content", body)
        [delivery] = await job_requests.wait_for(1)
        assert decoded(delivery).type == "local.create"
        assert decoded(delivery).node == "heightens1.megam.co"

    async def test_an_invalid_node_json_names_the_field(self, gateway: Any) -> None:
        api = await gateway.onboard()
        body = orjson.loads(orjson.dumps(NODE_JSON))
        body["noofinstances"] = "two"
        response = await api.post("/v1/nodes/content", body)
        assert response.status == 400
        error = await response.json()
        assert error["msg"] == "the body is not a valid node (Megam's node JSON)"
        assert "$.noofinstances" in error["more"]

    @pytest.mark.parametrize(
        ("cc", "where"),
        [
            ({"image": "-oProxyCommand=x", "flavor": "m1.small"}, "$.cloud.spec.image"),
            ({"image": "ami-1", "flavor": "m1.small", "hostname": "x"}, "unknown field `hostname`"),
        ],
    )
    async def test_a_cloud_spec_herk_would_refuse_is_a_400_and_launches_nothing(
        self, gateway: Any, job_requests: Any, cc: dict[str, str], where: str
    ) -> None:
        api = await gateway.onboard()
        body = orjson.loads(orjson.dumps(NODE_JSON))
        body["command"]["compute"]["cc"] = cc
        response = await api.post("/v1/nodes/content", body)
        assert response.status == 400
        error = await response.json()
        assert error["msg"].startswith("bad params for knife.create: ")
        assert where in error["msg"]
        assert "become knife arguments" in error["more"]
        assert (await api.ok("/v1/nodes"))["results"] == []
        await api.add_local_cloud()
        await api.launch("after.local")
        [delivery] = await job_requests.wait_for(1)
        assert decoded(delivery).node == "after.local"

    async def test_too_many_instances_are_refused(self, gateway: Any) -> None:
        api = await gateway.onboard()
        response = await api.post("/v1/nodes/content", {**NODE_JSON, "noofinstances": 51})
        assert response.status == 400
