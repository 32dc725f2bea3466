"""The original Ruby client, unmodified, against ``megam up``: every call it has, and its builders.

The gem is the one nilavu (the 2014 portal) used; where the reference and the gem disagree, the
gem is what the original server answered. Each test reads what the gem made of the answer: the
Megam class it inflated (``claz``) and its fields.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import (
    SANDBOX_API_KEY,
    SANDBOX_EMAIL,
    Gem,
    Processes,
    message,
    nilavu_home,
    wait_http,
)

LOCAL_VAULT = "s3://cloudkeys/{email}/home"
CONF_LOCATION = "cloudrecipes/{email}/default_chef/chef-repo/.chef/knife.rb"

# Every call of Megam::API the gem loads (lib/megam/api/*.rb but logs.rb, which megam/api.rb leaves
# out), and the test below that makes it. get_appdefn is defined twice: (node, id) is the one kept.
CALLS = {
    "post_accounts": "TestAccounts",
    "post_auth": "TestAccounts",
    "get_accounts": "TestAccounts",
    "get_predefs": "TestCatalogue",
    "get_predef": "TestCatalogue",
    "post_predef": "TestCatalogue",
    "get_cloudtools": "TestCatalogue",
    "get_cloudtool": "TestCatalogue",
    "post_cloudtool": "TestCatalogue",
    "get_marketplaceapps": "TestCatalogue",
    "get_marketplaceapp": "TestCatalogue",
    "post_marketplaceapp": "TestCatalogue",
    "delete_marketplaceapp": "TestCallsThatNeverLeaveTheGem",
    "post_predefcloud": "TestPredefClouds",
    "get_predefclouds": "TestPredefClouds",
    "get_predefcloud": "TestPredefClouds",
    "post_cloudtoolsetting": "TestSettings",
    "get_cloudtoolsettings": "TestSettings",
    "get_cloudtoolsetting": "TestSettings",
    "post_sshkey": "TestSettings",
    "get_sshkeys": "TestSettings",
    "get_sshkey": "TestSettings",
    "post_node": "TestBuilders (Megam::Node.create of MakeNode's hash)",
    "get_node": "TestBuilders",
    "get_nodes": "TestBuilders",
    "post_request": "TestBuilders (Megam::Request.create of DeleteNode's hash)",
    "get_requests": "TestBuilders",
    "get_request": "TestBuilders",
    "delete_node": "TestCallsThatNeverLeaveTheGem",
    "post_appdefn": "TestNodeDefinitionsAndRequests",
    "get_appdefn": "TestNodeDefinitionsAndRequests",
    "update_appdefn": "TestNodeDefinitionsAndRequests",
    "post_boltdefn": "TestNodeDefinitionsAndRequests",
    "get_boltdefn": "TestNodeDefinitionsAndRequests",
    "update_boltdefn": "TestNodeDefinitionsAndRequests",
    "post_appreq": "TestNodeDefinitionsAndRequests",
    "get_appreq": "TestNodeDefinitionsAndRequests",
    "post_boltreq": "TestNodeDefinitionsAndRequests",
    "get_boltreq": "TestNodeDefinitionsAndRequests",
    "post_addon": "TestNodeDefinitionsAndRequests",
    "get_addons": "TestNodeDefinitionsAndRequests",
}


def test_every_call_of_the_gem_is_exercised_here(gem_lib: Path) -> None:
    loaded = re.findall(r'^require "megam/api/(\w+)"', (gem_lib / "megam/api.rb").read_text(), re.M)
    defined = {
        name
        for module in loaded
        for name in re.findall(
            r"^\s*def (\w+)", (gem_lib / f"megam/api/{module}.rb").read_text(), re.M
        )
    } - {"initialize"}
    assert defined == set(CALLS)


def onboard(gem: Gem) -> None:
    answer = gem.call("post_accounts", {"email": gem.email, "api_key": gem.api_key})
    assert answer["status"] == 201, answer


def local_cloud(gem: Gem, name: str = "home") -> dict[str, Any]:
    answer = gem.call(
        "post_predefcloud",
        {
            "name": name,
            "spec": {
                "type_name": "local",
                "groups": "",
                "image": "",
                "flavor": "",
                "tenant_id": "",
            },
            "access": {
                "ssh_key": "",
                "identity_file": "",
                "ssh_user": "",
                "vault_location": LOCAL_VAULT.format(email=gem.email),
                "sshpub_location": "",
                "zone": "",
                "region": "",
            },
        },
    )
    assert answer["status"] == 201, answer
    return answer


def chef_repo(gem: Gem) -> dict[str, Any]:
    answer = gem.call(
        "post_cloudtoolsetting",
        {
            "cloud_type": "chef",
            "repo_name": "default_chef",
            "repo": "https://github.com/indykish/chef-repo.git",
            "vault_location": f"s3://cloudrecipes/{gem.email}/default_chef/chef-repo.zip",
            "conf_location": CONF_LOCATION.format(email=gem.email),
        },
    )
    assert answer["status"] == 201, answer
    return answer


def book_name(prefix: str) -> str:
    """A node name of the test's own: node names are unique across all accounts (DNS names)."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def created_id(answer: dict[str, Any]) -> str:
    """The id a 201 names in its message (the gem keeps only code, type, msg and links)."""
    found = re.search(r"\b[A-Z]{3}[0-9]+\b", message(answer)["msg"])
    assert found, answer
    return found.group(0)


def portal_launch(book_name: str, predef_cloud: str = "home") -> dict[str, Any]:
    """The form nilavu filled in to launch an app, as MakeNode.create takes it."""
    return {
        "book_name": book_name,
        "domain_name": ".megam.local",
        "predef_cloud_name": predef_cloud,
        "provider": "chef",
        "repo": "default_chef",
        "provider_role": "rails",
        "book_type": "APP",
        "no_of_instances": "1",  # a form field: Megam::Node#to_hash makes it an integer
        "predef_name": "rails",
        "deps_scm": "https://github.com/indykish/aryabhata.git",
        "deps_war": "",
        "runtime_exec": "#[start] unicorn_<projectname>",
        "timetokill": "",
        "metered": "",
        "logging": "",
        "env_sh": "",
    }


class TestAccounts:
    def test_the_gems_own_account_values_are_accepted(self, gem_for: Any) -> None:
        gem = gem_for(SANDBOX_EMAIL, SANDBOX_API_KEY)
        created = gem.call(
            "post_accounts",
            {"email": SANDBOX_EMAIL, "api_key": SANDBOX_API_KEY, "authority": "admin-tom"},
        )
        assert created["status"] == 201, created
        account = created["body"]
        assert account["claz"] == "Megam::Account"
        assert account["api_key"] == SANDBOX_API_KEY
        assert account["authority"] == "user", "a claimed admin is recorded as a user"
        assert gem.call("post_auth")["body"]["claz"] == "Megam::Auth"
        shown = gem.call("get_accounts", SANDBOX_EMAIL)
        assert (shown["body"]["claz"], shown["body"]["email"]) == ("Megam::Account", SANDBOX_EMAIL)

    def test_a_wrong_api_key_is_a_clear_unauthorized(self, gem: Gem, gem_for: Any) -> None:
        impostor = gem_for(gem.email, "IamAtlas{74}SomebodyElse#08")
        refused = impostor.call("post_auth")
        assert (refused["error"], refused["status"]) == ("Megam::API::Errors::Unauthorized", 401)
        assert gem.email in message(refused)["msg"]

    def test_a_second_onboarding_of_an_email_is_refused(self, gem: Gem) -> None:
        again = gem.call("post_accounts", {"email": gem.email, "api_key": SANDBOX_API_KEY})
        assert again["status"] == 409, again
        assert message(again)["msg_type"] == "error"


class TestCatalogue:
    def test_predefs_are_listed_and_shown(self, gem: Gem) -> None:
        listed, rails = gem.run({"call": "get_predefs"}, {"call": "get_predef", "args": ["rails"]})
        assert listed["body"]["claz"] == "Megam::PredefCollection"
        assert "rails" in {p["name"] for p in listed["body"]["items"]}
        assert (rails["body"]["claz"], rails["body"]["provider_role"]) == ("Megam::Predef", "rails")

    def test_cloud_tool_templates_arrive_as_the_typed_objects_the_builders_look_up(
        self, gem: Gem
    ) -> None:
        listed, chef = gem.run(
            {"call": "get_cloudtools"}, {"call": "get_cloudtool", "args": ["chef"]}
        )
        assert listed["body"]["claz"] == "Megam::CloudToolCollection"
        assert [t["claz"] for t in listed["body"]["items"]] == ["Megam::CloudTool"]
        tool = chef["body"]
        assert (tool["claz"], tool["cli"]) == ("Megam::CloudTool", "knife")
        templates = tool["cloudtemplates"]
        assert templates["claz"] == "Megam::CloudTemplateCollection"
        by_type = {t["cctype"]: t for t in templates["items"]}
        for cctype in ("ec2", "hp", "google", "gogrid", "opennebula", "profitbricks", "local"):
            groups = by_type[cctype]["cloud_instruction_group"]
            assert {g["claz"] for g in groups} == {"Megam::CloudInstructionGroup"}
            server = next(g for g in groups if g["group"] == "server")
            assert server["claz"] == "Megam::CloudInstructionGroup"
        google = next(
            g for g in by_type["google"]["cloud_instruction_group"] if g["group"] == "server"
        )
        steps = google["cloud_instructions_array"][0]
        assert steps["claz"] == "Megam::CloudInstructionCollection"
        assert {
            "claz": "Megam::CloudInstruction",
            "action": "delete",
            "command": "server delete <node_name> -f -c -P -y",
            "name": "",
        } in steps["items"]
        assert by_type["rackspace"]["cloud_instruction_group"] == []

    def test_the_marketplace_is_listed_and_shown(self, gem: Gem) -> None:
        listed, shown = gem.run(
            {"call": "get_marketplaceapps"}, {"call": "get_marketplaceapp", "args": ["wordpress"]}
        )
        assert listed["body"]["claz"] == "Megam::MarketPlaceCollection"
        assert (shown["body"]["claz"], shown["body"]["name"]) == ("Megam::MarketPlace", "wordpress")

    @pytest.mark.parametrize(
        ("call", "item"),
        [
            ("post_predef", {"name": "cobol", "provider": "chef"}),
            ("post_cloudtool", {"name": "puppet", "cli": "puppet"}),
            ("post_marketplaceapp", {"name": "mine", "predefnode": "rails"}),
        ],
    )
    def test_the_shared_catalogue_cannot_be_changed_by_an_account(
        self, gem: Gem, call: str, item: dict[str, Any]
    ) -> None:
        refused = gem.call(call, item)
        assert refused["status"] == 405, refused
        assert message(refused)["msg_type"] == "error"
        assert refused["error"] == "Megam::API::Errors::ErrorWithResponse"


class TestPredefClouds:
    @pytest.mark.parametrize(
        "type_name",
        ["ec2", "aws-ec2", "hp", "google", "gogrid", "opennebula", "profitbricks", "rackspace"],
    )
    def test_every_cloud_type_the_original_knew_can_be_stored(
        self, gem: Gem, type_name: str
    ) -> None:
        created = gem.call(
            "post_predefcloud",
            {
                "name": f"{type_name}-1",
                "spec": {
                    "type_name": type_name,
                    "groups": "megam",
                    "image": "ami-d783cd85",
                    "flavor": "t1.micro",
                    "tenant_id": "",
                },
                "access": {
                    "ssh_key": "megam_ec2",
                    "identity_file": "~/.ssh/megam_ec2.pem",
                    "ssh_user": "ubuntu",
                    "vault_location": f"s3://cloudkeys/{gem.email}/{type_name}-1",
                    "sshpub_location": "",
                    "zone": "",
                    "region": "ap-southeast-1",
                },
            },
        )
        assert created["status"] == 201, created
        assert message(created)["msg_type"] == "info"
        listed, shown = gem.run(
            {"call": "get_predefclouds"}, {"call": "get_predefcloud", "args": [f"{type_name}-1"]}
        )
        assert listed["body"]["claz"] == "Megam::PredefCloudCollection"
        assert shown["body"]["claz"] == "Megam::PredefCloud"
        assert shown["body"]["spec"]["type_name"] == type_name


class TestSettings:
    def test_cloud_tool_settings_are_stored_listed_and_shown(self, gem: Gem) -> None:
        chef_repo(gem)
        listed = gem.call("get_cloudtoolsettings")
        assert listed["body"]["claz"] == "Megam::CloudToolSettingCollection"
        (setting,) = listed["body"]["items"]
        assert setting["repo_name"] == "default_chef"
        shown = gem.call("get_cloudtoolsetting", setting["id"])
        assert shown["body"]["claz"] == "Megam::CloudToolSetting"
        assert shown["body"]["conf_location"] == CONF_LOCATION.format(email=gem.email)

    def test_ssh_keys_are_stored_listed_and_shown(self, gem: Gem) -> None:
        created, listed, shown = gem.run(
            {"call": "post_sshkey", "args": [{"name": "megam_ec2", "path": "sshkeys/megam_ec2"}]},
            {"call": "get_sshkeys"},
            {"call": "get_sshkey", "args": ["megam_ec2"]},
        )
        assert created["status"] == 201, created
        assert listed["body"]["claz"] == "Megam::SshKeyCollection"
        assert (shown["body"]["claz"], shown["body"]["name"]) == ("Megam::SshKey", "megam_ec2")


class TestBuilders:
    """MakeNode and DeleteNode: how the portal launched and deleted every node."""

    def test_make_node_launches_a_node_that_runs_and_delete_node_deletes_it(self, gem: Gem) -> None:
        local_cloud(gem)
        chef_repo(gem)
        book = book_name("web")
        node_name = f"{book}1.megam.local"  # noofinstances 1 is an instance numbered 1
        launched = gem.build("make_node", "create", portal_launch(book))
        assert launched["status"] == 201, launched
        assert message(launched)["msg_type"] == "info", launched
        built = launched["built"]["command"]
        assert built["compute"]["cctype"] == "local"
        assert built["cloudtool"]["chef"]["plugin"] == (
            f"local server create -c {CONF_LOCATION.format(email=gem.email)}"
        )

        node = gem.node_reaching(node_name, {"RUNNING", "NOTRUNNING"})
        assert node["status"] == "RUNNING", node
        kept = node["request"]["command"]
        assert kept["cloudtool"]["chef"].pop("name") == f"-N {node_name}", "the instance's name"
        built["cloudtool"]["chef"].pop("name")
        assert kept == built, "the node keeps the command it was made with"
        listed, requests, for_node = gem.run(
            {"call": "get_nodes"},
            {"call": "get_requests"},
            {"call": "get_request", "args": [node_name]},
        )
        assert [n["node_name"] for n in listed["body"]["items"]] == [node_name]
        assert requests["body"]["claz"] == "Megam::RequestCollection"
        assert [r["req_type"] for r in for_node["body"]["items"]] == ["create"]

        deleting = gem.build(
            "delete_node", "delete", {"node_name": node_name, "repo": "default_chef"}
        )
        assert deleting["status"] == 201, deleting
        assert deleting["built"]["command"]["cloudtool"]["chef"]["plugin"] == (
            f"local server delete {node_name} -c {CONF_LOCATION.format(email=gem.email)} -y"
        )
        assert gem.node_reaching(node_name, {"DELETED"})["status"] == "DELETED"

    def test_repeated_launches_and_deletes_are_refused_and_say_why(self, gem: Gem) -> None:
        local_cloud(gem)
        chef_repo(gem)
        book = book_name("twice")
        node_name = f"{book}1.megam.local"
        assert gem.build("make_node", "create", portal_launch(book))["status"] == 201
        again = gem.build("make_node", "create", portal_launch(book))
        assert (again["error"], again["status"]) == ("Megam::API::Errors::ErrorWithResponse", 409)
        assert node_name in message(again)["msg"]
        assert gem.node_reaching(node_name, {"RUNNING", "NOTRUNNING"})["status"] == "RUNNING"
        delete = {"node_name": node_name, "repo": "default_chef"}
        assert gem.build("delete_node", "delete", delete)["status"] == 201
        assert gem.node_reaching(node_name, {"DELETED"})["status"] == "DELETED"
        deleted_again = gem.build("delete_node", "delete", delete)
        assert deleted_again["status"] == 409, deleted_again
        assert message(deleted_again)["msg"] == f"node {node_name} is already deleted"

    def test_delete_node_after_a_restart_of_megam_still_has_the_command_to_build_from(
        self, gem_lib: Path, processes: Processes, tmp_path: Path
    ) -> None:
        up = processes.start("up", "up", "--workers", "2")
        wait_http(processes.env["MEGAM_URL"] + "/healthz")
        gem = Gem(gem_lib, processes, nilavu_home(tmp_path / "gem"), SANDBOX_EMAIL, SANDBOX_API_KEY)
        onboard(gem)
        local_cloud(gem)
        chef_repo(gem)
        book = book_name("kept")
        node_name = f"{book}1.megam.local"
        assert gem.build("make_node", "create", portal_launch(book))["status"] == 201
        assert gem.node_reaching(node_name, {"RUNNING", "NOTRUNNING"})["status"] == "RUNNING"
        assert processes.stop(up) == 0, processes.log("up")

        processes.start("up-again", "up", "--workers", "2")
        wait_http(processes.env["MEGAM_URL"] + "/healthz")
        deleting = gem.build(
            "delete_node", "delete", {"node_name": node_name, "repo": "default_chef"}
        )
        assert deleting["status"] == 201, deleting
        assert deleting["built"]["command"]["compute"]["cctype"] == "local"
        assert gem.node_reaching(node_name, {"DELETED"})["status"] == "DELETED"

    def test_make_node_on_a_cloud_herk_cannot_launch_is_refused_with_the_reason(
        self, gem: Gem
    ) -> None:
        chef_repo(gem)
        stored = gem.call(
            "post_predefcloud",
            {
                "name": "grid",
                "spec": {"type_name": "gogrid", "image": "ubuntu-12.04", "flavor": "512MB"},
                "access": {"vault_location": f"s3://cloudkeys/{gem.email}/grid", "zone": "1"},
            },
        )
        assert stored["status"] == 201, stored
        refused = gem.build("make_node", "create", portal_launch(book_name("grid"), "grid"))
        assert refused["status"] == 400, refused
        assert message(refused)["msg"] == (
            "herk cannot launch nodes on a gogrid cloud: it has no knife plugin for gogrid"
        )
        assert gem.call("get_nodes")["body"]["items"] == [], "nothing was launched"

    def test_delete_node_of_a_node_that_does_not_exist_is_the_builders_own_error(
        self, gem: Gem
    ) -> None:
        built = gem.build("delete_node", "delete", {"node_name": "ghost.megam.local", "repo": "x"})
        assert built["built"]["claz"] == "Megam::Error"
        assert built["built"]["some_msg"]["msg_type"] == "error"
        assert "status" not in built, "nothing was sent"


class TestNodeDefinitionsAndRequests:
    """App and bolt definitions and lifecycle requests, and marketplace addons, on a node."""

    @pytest.fixture
    def node(self, gem: Gem) -> dict[str, Any]:
        """A launched node, as the gem shows it (the routes below take its id, NOD…)."""
        local_cloud(gem)
        chef_repo(gem)
        book = book_name("app")
        launched = gem.build("make_node", "create", portal_launch(book))
        assert launched["status"] == 201, launched
        shown: dict[str, Any] = gem.call("get_node", f"{book}1.megam.local")["body"]["items"][0]
        return shown

    def test_app_definitions_are_stored_shown_and_updated(
        self, gem: Gem, node: dict[str, Any]
    ) -> None:
        defns = {"timetokill": "", "metered": "", "logging": "", "runtime_exec": "", "env_sh": ""}
        created = gem.call("post_appdefn", {"node_name": node["node_name"], "appdefns": defns})
        assert created["status"] == 201, created
        defn_id = created_id(created)
        shown = gem.call("get_appdefn", node["id"], defn_id)
        assert (shown["status"], shown["body"]["claz"]) == (200, "Megam::Appdefns"), shown
        updated = gem.call(
            "update_appdefn",
            {"id": defn_id, "node_name": node["node_name"], "appdefns": {**defns, "metered": "1"}},
        )
        assert updated["status"] == 201, updated
        assert gem.call("get_appdefn", node["id"], defn_id)["body"]["appdefns"]["metered"] == "1"

    def test_bolt_definitions_are_stored_shown_and_updated(
        self, gem: Gem, node: dict[str, Any]
    ) -> None:
        defns = {
            "username": "u",
            "apikey": "secret-key",
            "store_name": "db",
            "url": "",
            "prime": "",
        }
        created = gem.call("post_boltdefn", {"node_name": node["node_name"], "boltdefns": defns})
        assert created["status"] == 201, created
        shown = gem.call("get_boltdefn", node["id"])
        assert shown["body"]["claz"] == "Megam::BoltdefnsCollection", shown
        assert [d["boltdefns"]["username"] for d in shown["body"]["items"]] == ["u"]
        assert "secret-key" not in str(shown), "the bolt's api key is never shown"
        updated = gem.call(
            "update_boltdefn",
            {"id": created_id(created), "node_name": node["node_name"], "boltdefns": defns},
        )
        assert updated["status"] == 201, updated

    @pytest.mark.parametrize(
        ("post", "get"), [("post_appreq", "get_appreq"), ("post_boltreq", "get_boltreq")]
    )
    def test_lifecycle_requests_are_stored_and_listed(
        self, gem: Gem, node: dict[str, Any], post: str, get: str
    ) -> None:
        created = gem.call(post, {"node_name": node["node_name"], "req_type": "restart"})
        assert created["status"] == 201, created
        listed = gem.call(get, node["id"])
        assert listed["status"] == 200, listed
        assert [r["req_type"] for r in listed["body"]["items"]] == ["restart"]

    def test_marketplace_addons_are_stored_and_listed(self, gem: Gem, node: dict[str, Any]) -> None:
        created = gem.call(
            "post_addon",
            {
                "node_name": node["node_name"],
                "marketplace_id": "MKP1",
                "config": {"monitoring": {"agent": "ganglia"}},
            },
        )
        assert created["status"] == 201, created
        listed = gem.call("get_addons", node["id"])
        assert listed["body"]["claz"] == "Megam::MarketPlaceAddonsCollection", listed
        assert [a["marketplace_id"] for a in listed["body"]["items"]] == ["MKP1"]


class TestCallsThatNeverLeaveTheGem:
    """``delete_node`` and ``delete_marketplaceapp`` build their path in single quotes, so the gem
    asks for ``/v1/nodes/#{node_id}`` literally and Ruby refuses the URI before anything is sent
    (the original server had no DELETE route either: nodes are deleted with DeleteNode)."""

    @pytest.mark.parametrize("call", ["delete_node", "delete_marketplaceapp"])
    def test_the_gem_refuses_its_own_path(self, gem: Gem, call: str) -> None:
        crashed = gem.call(call, "anything", crash="URI::InvalidURIError")
        assert "#{node_id}" in crashed["message"]
