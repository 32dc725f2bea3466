"""The rest of Megam's v1 table: node updates, cloud tool settings, ssh keys, the marketplace and
its addons, app/bolt definitions and lifecycle requests."""

from __future__ import annotations

from typing import Any

KEY_MATERIAL = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
BOLT_KEY = "bolt-api-key-do-not-show-0123456789"


async def _created_id(api: Any, path: str, body: dict[str, Any]) -> str:
    [message] = await api.created(path, body)
    return message["id"]


class TestNodeUpdates:
    async def test_status_changes_and_empty_fields_keep_what_was_there(self, launched: Any) -> None:
        api, _ = await launched("upd.local")
        await api.created("/v1/nodes/update", {"node_name": "upd.local", "status": "RUNNING"})
        node = await api.node("upd.local")
        assert (node["status"], node["node_name"], node["appdefnsid"]) == (
            "RUNNING",
            "upd.local",
            "",
        )

    async def test_a_rename_waits_for_the_nodes_jobs_to_end(
        self, launched: Any, herk: Any, eventually: Any
    ) -> None:
        api, job = await launched("old.local")
        rename = {"node_name": "old.local", "new_node_name": "new.local"}
        refused = await api.post("/v1/nodes/update", rename)
        assert refused.status == 409
        assert "unfinished job" in (await refused.json())["msg"]
        await herk.status(job, "succeeded", seq=2)

        async def running() -> Any:
            return (await api.node("old.local"))["status"] == "RUNNING"

        await eventually(running)
        await api.created("/v1/nodes/update", rename)
        assert (await api.node("new.local"))["status"] == "RUNNING"
        assert (await api.get("/v1/nodes/old.local")).status == 404

    async def test_definitions_named_must_belong_to_the_node(self, launched: Any) -> None:
        api, _ = await launched("defs.local")
        other_api, _ = await launched("other.local")
        theirs = await _created_id(
            other_api, "/v1/appdefns/content", {"node_name": "other.local", "appdefns": {}}
        )
        mine = await _created_id(
            api, "/v1/appdefns/content", {"node_name": "defs.local", "appdefns": {}}
        )
        bad = await api.post("/v1/nodes/update", {"node_name": "defs.local", "appdefnsid": theirs})
        assert bad.status == 404
        await api.created("/v1/nodes/update", {"node_name": "defs.local", "appdefnsid": mine})
        assert (await api.node("defs.local"))["appdefnsid"] == mine

    async def test_an_unknown_status_is_400(self, launched: Any) -> None:
        api, _ = await launched("st.local")
        response = await api.post("/v1/nodes/update", {"node_name": "st.local", "status": "UP"})
        assert response.status == 400


class TestSecretsOfTheSimpleKinds:
    async def test_a_private_key_is_never_returned_nor_stored_in_clear(self, gateway: Any) -> None:
        api = await gateway.tenant()
        body = {"name": "deploy", "public_key": "ssh-ed25519 AAAA", "private_key": KEY_MATERIAL}
        await api.created("/v1/sshkeys/content", body)
        shown = await api.ok("/v1/sshkeys/deploy")
        listed = await api.ok("/v1/sshkeys")
        assert (shown["has_private_key"], shown["public_key"]) == (True, "ssh-ed25519 AAAA")
        assert "private_key" not in shown and listed["results"] == [shown]
        assert b"b3BlbnNzaC1rZXktdjEAAAAA" not in gateway.stored_bytes()
        again = await api.post("/v1/sshkeys/content", {"name": "deploy"})
        assert again.status == 409

    async def test_a_bolt_api_key_is_never_returned_nor_stored_in_clear(
        self, gateway: Any, launched: Any
    ) -> None:
        api, _ = await launched("bolt.local")
        node_id = (await api.node("bolt.local"))["id"]
        defns = {"username": "u", "apikey": BOLT_KEY, "store_name": "s"}
        await api.created("/v1/boltdefns/content", {"node_name": "bolt.local", "boltdefns": defns})
        [shown] = (await api.ok(f"/v1/boltdefns/{node_id}"))["results"]
        assert (shown["has_apikey"], shown["username"], "apikey" in shown) == (True, "u", False)
        assert BOLT_KEY.encode() not in gateway.stored_bytes()


class TestDefinitionsAndLifecycleRequests:
    async def test_app_definitions_are_kept_per_node_and_replaced_by_update(
        self, launched: Any
    ) -> None:
        api, _ = await launched("app.local")
        node_id = (await api.node("app.local"))["id"]
        adf = await _created_id(
            api, "/v1/appdefns/content", {"node_name": "app.local", "appdefns": {"env_sh": "A=1"}}
        )
        update = {"id": adf, "node_name": "app.local", "appdefns": {"env_sh": "A=2"}}
        await api.created("/v1/appdefns/update", update)
        shown = await api.ok(f"/v1/appdefns/{node_id}/{adf}")
        assert (shown["json_claz"], shown["env_sh"], shown["node_name"]) == (
            "Megam::AppDefns",
            "A=2",
            "app.local",
        )
        assert [d["id"] for d in (await api.ok("/v1/appdefns"))["results"]] == [adf]

    async def test_a_lifecycle_request_is_stored_and_says_it_does_not_run(
        self, launched: Any
    ) -> None:
        api, _ = await launched("life.local")
        node_id = (await api.node("life.local"))["id"]
        await api.created("/v1/appreqs/content", {"node_name": "life.local", "req_type": "restart"})
        [stored] = (await api.ok(f"/v1/appreqs/{node_id}"))["results"]
        assert (stored["req_type"], stored["state"]) == ("restart", "stored")
        assert "nothing is published" in stored["reason"]
        unknown = await api.post(
            "/v1/boltreqs/content",
            {"node_name": "life.local", "req_type": "stop", "boltdefns_id": "BDF1"},
        )
        assert unknown.status == 404


class TestTheMarketplace:
    async def test_it_is_seeded_and_addons_go_on_nodes(self, launched: Any) -> None:
        api, _ = await launched("shop.local")
        items = (await api.ok("/v1/marketplaces"))["results"]
        assert "wordpress" in {item["name"] for item in items}
        by_id = await api.ok(f"/v1/marketplaces/{items[0]['id']}")
        assert by_id["name"] == items[0]["name"]
        addon = {"node_name": "shop.local", "marketplace_id": "wordpress", "config": {}}
        await api.created("/v1/marketplaceaddons/content", addon)
        node_id = (await api.node("shop.local"))["id"]
        [shown] = (await api.ok(f"/v1/marketplaceaddons/{node_id}"))["results"]
        assert (shown["marketplace_id"], shown["node_id"]) == ("wordpress", node_id)
        unknown = await api.post(
            "/v1/marketplaceaddons/content", {**addon, "marketplace_id": "nosuch"}
        )
        assert unknown.status == 404


class TestCloudToolSettings:
    async def test_settings_are_kept_and_shown_by_id(self, gateway: Any) -> None:
        api = await gateway.tenant()
        body = {"repo_name": "default_chef", "repo": "https://example.com/chef-repo.git"}
        cts = await _created_id(api, "/v1/cloudtoolsettings/content", body)
        shown = await api.ok(f"/v1/cloudtoolsettings/{cts}")
        assert (shown["repo_name"], shown["cloud_type"], shown["id"]) == (
            "default_chef",
            "chef",
            cts,
        )
