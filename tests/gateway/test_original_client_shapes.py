"""The shapes the original Ruby client (megam_api, 2014) reads, checked without Ruby.

tests/compat drives the gem itself; these pin what its builders and json_claz table depend on,
so that a change is caught by the gateway suite too.
"""

from __future__ import annotations

from typing import Any

import orjson

from tests.gateway.test_launching_nodes import NODE_JSON


class TestShowingANode:
    async def test_one_node_is_a_node_collection_of_one_with_the_nodes_fields_beside(
        self, gateway: Any
    ) -> None:
        """The original's answer (DeleteNode looks the node up in it); clients of this gateway
        that read a Node (CLI, console) read the same fields at the top level."""
        api = await gateway.onboard()
        await api.add_local_cloud()
        await api.launch("web.local")
        shown = await api.node("web.local")
        assert shown["json_claz"] == "Megam::NodeCollection"
        [node] = shown["results"]
        assert node["json_claz"] == "Megam::Node"
        assert {k: v for k, v in shown.items() if k not in ("json_claz", "results")} == {
            k: v for k, v in node.items() if k != "json_claz"
        }

    async def test_a_nodes_request_carries_the_command_json_it_was_created_with(
        self, gateway: Any
    ) -> None:
        api = await gateway.onboard()
        body = orjson.loads(orjson.dumps(NODE_JSON))
        body["command"]["compute"]["cctype"] = "local"
        body["noofinstances"] = 1
        await api.created("/v1/nodes/content", body)
        [node] = (await api.node("heightens1.megam.co"))["results"]
        command = node["request"]["command"]
        sent = body["command"]["compute"]
        assert (command["compute"]["cctype"], command["compute"]["cc"]) == ("local", sent["cc"])
        assert sent["access"].items() <= command["compute"]["access"].items()
        assert command["systemprovider"] == body["command"]["systemprovider"]
        assert command["cloudtool"]["chef"]["name"] == "-N heightens1.megam.co"
        assert node["request"]["job_type"] == "local.create"

    async def test_a_short_form_node_gets_the_command_json_built_for_it(self, gateway: Any) -> None:
        api = await gateway.onboard()
        await api.add_local_cloud()
        await api.launch("short.local")
        command = (await api.node("short.local"))["request"]["command"]
        assert command["systemprovider"] == {"provider": {"prov": "chef"}}
        assert command["compute"]["cctype"] == "local"


class TestNodeJsonOnACloudHerkCannotLaunch:
    async def test_the_launch_is_refused_with_the_reason(self, gateway: Any) -> None:
        api = await gateway.onboard()
        body = orjson.loads(orjson.dumps(NODE_JSON))
        body["command"]["compute"]["cctype"] = "opennebula"
        response = await api.post("/v1/nodes/content", body)
        assert response.status == 400
        error = await response.json()
        assert error["msg"].startswith("herk cannot launch nodes on a opennebula cloud")
        assert (await api.ok("/v1/nodes"))["results"] == []


class TestClassNamesTheClientKnows:
    async def test_definitions_and_addons_use_the_originals_class_names(self, gateway: Any) -> None:
        api = await gateway.onboard()
        await api.add_local_cloud()
        await api.launch("defs.local")
        node_id = (await api.node("defs.local"))["id"]
        defns = {"node_name": "defs.local", "boltdefns": {"username": "u", "apikey": "k" * 20}}
        await api.created("/v1/boltdefns/content", defns)
        addon = {"node_name": "defs.local", "marketplace_id": "MKP1", "config": {}}
        await api.created("/v1/marketplaceaddons/content", addon)
        bolts = await api.ok(f"/v1/boltdefns/{node_id}")
        assert bolts["json_claz"] == "Megam::BoltDefnCollection"
        [bolt] = bolts["results"]
        assert bolt["json_claz"] == "Megam::BoltDefns"
        assert bolt["boltdefns"]["username"] == "u", "the original client reads them nested"
        assert "apikey" not in bolt["boltdefns"]
        addons = await api.ok(f"/v1/marketplaceaddons/{node_id}")
        assert addons["json_claz"] == "Megam::MarketPlaceAddonsCollection"
        assert addons["results"][0]["json_claz"] == "Megam::MarketPlaceAddons"
        apps = await api.ok("/v1/appdefns")
        assert apps["json_claz"] == "Megam::AppDefnCollection"
