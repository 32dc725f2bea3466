"""The seeded catalogue (predefs, cloud tools) and an account's predef clouds."""

from __future__ import annotations

from typing import Any

import pytest

EC2 = {
    "name": "aws-east",
    "spec": {"type_name": "ec2", "groups": "megam", "image": "ami-1234", "flavor": "m1.small"},
    "access": {"ssh_key": "megam_ec2", "ssh_user": "ubuntu", "region": "us-east-1"},
    "credentials": {
        "aws_access_key_id": "AKIAEXAMPLE1234",
        "aws_secret_access_key": "s3cr3t-v4lue",
    },
}


class TestCatalogue:
    async def test_predefs_are_seeded_as_a_megam_collection(self, gateway: Any) -> None:
        api = await gateway.onboard()
        predefs = await api.ok("/v1/predefs")
        assert predefs["json_claz"] == "Megam::PredefCollection"
        names = {p["name"] for p in predefs["results"]}
        assert {"rails", "java", "nodejs", "riak", "zarafa"} <= names
        assert len(names) == 21

    async def test_one_predef_by_name(self, gateway: Any) -> None:
        api = await gateway.onboard()
        rails = await api.ok("/v1/predefs/rails")
        assert rails["json_claz"] == "Megam::Predef"
        assert (rails["provider"], rails["provider_role"], rails["build_monkey"]) == (
            "chef",
            "rails",
            "bundle",
        )

    async def test_cloud_tools_carry_the_knife_templates(self, gateway: Any) -> None:
        api = await gateway.onboard()
        chef = await api.ok("/v1/cloudtools/chef")
        assert chef["cloudtemplates"]["json_claz"] == "Megam::CloudTemplateCollection"
        templates = {t["cctype"]: t for t in chef["cloudtemplates"]["results"]}
        groups = {g["group"]: g for g in templates["google"]["cloud_instruction_group"]}
        assert groups["server"]["json_claz"] == "Megam::CloudInstructionGroup"
        (steps,) = groups["server"]["results"]
        assert steps["json_claz"] == "Megam::CloudInstructionCollection"
        assert {
            "action": "delete",
            "command": "server delete <node_name> -f -c -P -y",
            "name": "",
            "json_claz": "Megam::CloudInstruction",
        } in steps["results"]
        assert templates["openstack"]["cloud_instruction_group"] == []

    @pytest.mark.parametrize("path", ["/v1/predefs/cobol", "/v1/cloudtools/puppet"])
    async def test_unknown_names_are_404(self, gateway: Any, path: str) -> None:
        api = await gateway.onboard()
        response = await api.get(path)
        assert response.status == 404
        assert (await response.json())["json_claz"] == "Megam::Error"


class TestPredefClouds:
    async def test_a_local_cloud_needs_only_a_name_and_type(self, gateway: Any) -> None:
        api = await gateway.onboard()
        [message] = await api.created(
            "/v1/predefclouds/content", {"name": "local", "spec": {"type_name": "local"}}
        )
        assert (message["code"], message["msg_type"]) == (201, "info")
        assert message["id"].startswith("PDC")
        cloud = await api.ok("/v1/predefclouds/local")
        assert cloud["json_claz"] == "Megam::PredefCloud"
        assert cloud["spec"]["type_name"] == "local"

    async def test_a_cloud_keeps_spec_and_access_and_hides_credentials(self, gateway: Any) -> None:
        api = await gateway.onboard()
        await api.created("/v1/predefclouds/content", EC2)
        cloud = await api.ok("/v1/predefclouds/aws-east")
        assert cloud["spec"] == {**EC2["spec"], "tenant_id": ""}
        assert cloud["access"]["region"] == "us-east-1"
        assert cloud["has_credentials"] is True
        listing = await api.get("/v1/predefclouds")
        assert b"s3cr3t-v4lue" not in await listing.read()
        assert b"AKIAEXAMPLE1234" not in await (await api.get("/v1/predefclouds/aws-east")).read()

    async def test_credentials_are_encrypted_at_rest(self, gateway: Any) -> None:
        api = await gateway.onboard()
        await api.created("/v1/predefclouds/content", EC2)
        stored = gateway.stored_bytes()
        assert b"ami-1234" in stored  # the check reads where the cloud went
        assert b"s3cr3t-v4lue" not in stored
        assert b"AKIAEXAMPLE1234" not in stored

    async def test_a_cloud_other_than_local_needs_image_and_flavor(self, gateway: Any) -> None:
        api = await gateway.onboard()
        response = await api.post(
            "/v1/predefclouds/content", {"name": "bare", "spec": {"type_name": "ec2"}}
        )
        assert response.status == 400
        assert "needs spec.image and spec.flavor" in (await response.json())["msg"]

    @pytest.mark.parametrize("type_name", ["gogrid", "opennebula", "profitbricks", "aws-ec2"])
    async def test_a_cloud_herk_cannot_launch_on_is_stored_but_a_launch_on_it_is_refused(
        self, gateway: Any, type_name: str
    ) -> None:
        """As the original, which stored any type; herk has no knife plugin for these."""
        api = await gateway.onboard()
        spec = {"type_name": type_name, "image": "ubuntu-12.04", "flavor": "512MB"}
        await api.created("/v1/predefclouds/content", {"name": "other", "spec": spec})
        shown = await api.ok("/v1/predefclouds/other")
        assert shown["spec"]["type_name"] == type_name
        body = {"node_name": "web.megam.co", "predefcloud": "other", "run_list": ["role[web]"]}
        response = await api.post("/v1/nodes/content", body)
        assert response.status == 400
        error = await response.json()
        assert error["msg"] == (
            f"herk cannot launch nodes on a {type_name} cloud: it has no knife plugin for "
            f"{type_name}"
        )
        assert "clouds herk launches on: local, ec2, google, openstack, hp" in error["more"]
        assert (await api.ok("/v1/nodes"))["results"] == [], "nothing was launched"

    @pytest.mark.parametrize("type_name", ["-oProxyCommand=x", "ec2 -o", "", "a" * 33])
    async def test_a_cloud_type_that_is_not_a_name_is_refused(
        self, gateway: Any, type_name: str
    ) -> None:
        api = await gateway.onboard()
        response = await api.post(
            "/v1/predefclouds/content", {"name": "x", "spec": {"type_name": type_name}}
        )
        assert response.status == 400
        assert "$.spec.type_name" in (await response.json())["more"]

    @pytest.mark.parametrize(
        ("part", "value", "where"),
        [
            ("spec", {"image": "ami-1 -o x"}, "$.spec.image"),
            ("access", {"ssh_user": "-oProxyCommand=x"}, "$.access.ssh_user"),
        ],
    )
    async def test_a_value_knife_could_misread_is_refused(
        self, gateway: Any, part: str, value: dict[str, str], where: str
    ) -> None:
        """Spec and access values become knife arguments: refused here, not by herk later."""
        api = await gateway.onboard()
        cloud = {**EC2, part: {**EC2[part], **value}}
        response = await api.post("/v1/predefclouds/content", cloud)
        assert response.status == 400
        error = await response.json()
        assert error["msg"] == "the body is not a valid predef cloud"
        assert where in error["more"]
        assert (await api.ok("/v1/predefclouds"))["results"] == []

    async def test_names_are_unique_per_account(self, gateway: Any) -> None:
        api = await gateway.onboard()
        await api.add_local_cloud("home")
        response = await api.post(
            "/v1/predefclouds/content", {"name": "home", "spec": {"type_name": "local"}}
        )
        assert response.status == 409
        other = await gateway.onboard()
        await other.add_local_cloud("home")  # another account may use the same name

    async def test_the_list_is_a_collection_of_ones_own_clouds(self, gateway: Any) -> None:
        api = await gateway.onboard()
        await api.add_local_cloud("one")
        await api.add_local_cloud("two")
        clouds = await api.ok("/v1/predefclouds")
        assert clouds["json_claz"] == "Megam::PredefCloudCollection"
        assert [c["name"] for c in clouds["results"]] == ["one", "two"]

    async def test_an_unknown_cloud_is_404(self, gateway: Any) -> None:
        api = await gateway.onboard()
        assert (await api.get("/v1/predefclouds/nope")).status == 404
