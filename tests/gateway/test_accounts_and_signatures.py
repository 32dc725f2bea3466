"""Onboarding and Megam's HMAC request signatures (megam-original.md §2.1)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from megam import hmac


class TestOnboarding:
    async def test_generates_an_api_key_and_returns_the_account(self, gateway: Any) -> None:
        response = await gateway.client.post(
            "/v1/accounts/content", json={"email": "Ann@Example.com"}
        )
        assert response.status == 201
        account = await response.json()
        assert account["json_claz"] == "Megam::Account"
        assert account["email"] == "ann@example.com"
        assert account["id"].startswith("ACT")
        assert account["authority"] == "user"
        assert len(account["api_key"]) >= 32

    async def test_keeps_the_api_key_the_client_chose(self, gateway: Any) -> None:
        key = "my-own-api-key-0123456789"
        api = await gateway.onboard("bob@example.com", api_key=key, authority="normal")
        assert api.api_key == key
        account = await api.ok("/v1/accounts/bob@example.com")
        assert (account["api_key"], account["authority"]) == (key, "normal")

    async def test_each_account_gets_its_own_key(self, gateway: Any) -> None:
        first, second = await gateway.onboard(), await gateway.onboard()
        assert first.api_key != second.api_key

    async def test_a_taken_email_is_a_409_in_megam_style(self, gateway: Any) -> None:
        await gateway.onboard("ann@example.com")
        response = await gateway.client.post(
            "/v1/accounts/content", json={"email": "ANN@example.com"}
        )
        assert response.status == 409
        error = await response.json()
        assert error["json_claz"] == "Megam::Error"
        assert error["msg_type"] == "error"
        assert "ann@example.com already exists" in error["msg"]

    @pytest.mark.parametrize(
        ("body", "detail"),
        [
            ({}, "missing required field `email`"),
            ({"email": "not-an-email"}, "$.email"),
            ({"email": "a@example.com\n"}, "$.email"),  # a pattern's $ alone would allow it
            ({"email": "a@example.com", "api_key": "short"}, "$.api_key"),
            ({"email": "a@example.com", "authority": 42}, "$.authority"),
        ],
    )
    async def test_invalid_bodies_say_what_is_wrong(
        self, gateway: Any, body: dict[str, Any], detail: str
    ) -> None:
        response = await gateway.client.post("/v1/accounts/content", json=body)
        assert response.status == 400
        error = await response.json()
        assert error["msg"] == "the body is not a valid account"
        assert detail in error["more"]

    @pytest.mark.parametrize(
        ("claimed", "recorded"),
        [("admin-tom", "user"), ("admin", "user"), ("root", "user"), ("normal", "normal")],
    )
    async def test_any_authority_is_accepted_but_admin_is_never_taken_from_the_body(
        self, gateway: Any, claimed: str, recorded: str
    ) -> None:
        body = {"email": "a@example.com", "authority": claimed}
        response = await gateway.client.post("/v1/accounts/content", json=body)
        assert response.status == 201
        assert (await response.json())["authority"] == recorded

    async def test_the_original_clients_sandbox_api_key_is_accepted(self, gateway: Any) -> None:
        body = {"email": "a@example.com", "api_key": "IamAtlas{74}NobodyCanSeeME#07"}
        response = await gateway.client.post("/v1/accounts/content", json=body)
        assert response.status == 201
        assert (await response.json())["api_key"] == body["api_key"]

    async def test_the_api_key_is_not_stored_in_clear(self, gateway: Any) -> None:
        api = await gateway.onboard("ann@example.com")
        stored = gateway.stored_bytes()
        assert b"ann@example.com" in stored  # the check reads where the account went
        assert api.api_key.encode() not in stored


class TestOwnAccount:
    async def test_an_account_reads_itself(self, gateway: Any) -> None:
        api = await gateway.onboard("carol@example.com")
        account = await api.ok("/v1/accounts/carol@example.com")
        assert account["email"] == "carol@example.com"

    async def test_another_accounts_email_is_refused(self, gateway: Any) -> None:
        api = await gateway.onboard("carol@example.com")
        await gateway.onboard("dave@example.com")
        response = await api.get("/v1/accounts/dave@example.com")
        assert response.status == 403
        assert "only read your own account" in (await response.json())["msg"]


class TestSignatures:
    @pytest.mark.parametrize("algorithm", ["sha1", "sha256"])
    async def test_a_good_signature_is_authorized(self, gateway: Any, algorithm: str) -> None:
        api = dataclasses.replace(await gateway.onboard(), algorithm=algorithm)
        response = await api.post("/v1/auth", {"email": api.email})
        assert response.status == 200
        body = await response.json()
        assert body["json_claz"] == "Megam::Auth"
        assert body["code"] == 200

    async def test_sha256_signature_checked_as_sha1_does_not_match(self, gateway: Any) -> None:
        api = await gateway.onboard()
        headers = hmac.sign_headers(api.email, api.api_key, "/v1/auth", b"", "sha256")
        del headers[hmac.ALG_HEADER]
        response = await gateway.client.post("/v1/auth", headers=headers)
        assert response.status == 401

    async def test_wrong_api_key_names_the_email_whose_key_it_is_not(self, gateway: Any) -> None:
        api = dataclasses.replace(await gateway.onboard(), api_key="not-the-right-key-at-all")
        response = await api.get("/v1/nodes")
        assert response.status == 401
        error = await response.json()
        assert error["msg"] == (
            f"the signature does not match the api key on record for {api.email}"
        )
        assert "X-Megam-DATE" in error["more"]

    async def test_a_signature_over_another_body_does_not_match(self, gateway: Any) -> None:
        api = await gateway.onboard()
        headers = api.headers("/v1/auth", b'{"a": 1}')
        response = await gateway.client.post("/v1/auth", data=b'{"a": 2}', headers=headers)
        assert response.status == 401

    async def test_a_signature_over_another_path_does_not_match(self, gateway: Any) -> None:
        api = await gateway.onboard()
        response = await gateway.client.get("/v1/nodes", headers=api.headers("/v1/predefs"))
        assert response.status == 401

    async def test_unknown_email_is_told_apart_from_a_wrong_key(self, gateway: Any) -> None:
        headers = hmac.sign_headers("nobody@example.com", "whatever-key", "/v1/nodes")
        response = await gateway.client.get("/v1/nodes", headers=headers)
        assert response.status == 401
        error = await response.json()
        assert error["msg"] == "no account is registered for nobody@example.com"

    async def test_an_unsigned_request_is_a_401(self, gateway: Any) -> None:
        response = await gateway.client.get("/v1/nodes")
        assert response.status == 401
        assert (await response.json())["msg"] == "this request is not signed"

    @pytest.mark.parametrize(
        ("header", "message"),
        [
            ("no-colon-here", "couldn't parse the X-Megam-HMAC header"),
            ("ann@example.com:", "couldn't parse the X-Megam-HMAC header"),
            ("not an email:abcdef", "does not start with an email address"),
            ("ann@example.com:not-hex!", "is not hexadecimal"),
        ],
    )
    async def test_an_unparsable_header_is_a_406(
        self, gateway: Any, header: str, message: str
    ) -> None:
        headers = {hmac.HMAC_HEADER: header, hmac.DATE_HEADER: hmac.format_date()}
        response = await gateway.client.get("/v1/nodes", headers=headers)
        assert response.status == 406
        assert message in (await response.json())["msg"]

    async def test_a_missing_date_is_a_406(self, gateway: Any) -> None:
        api = await gateway.onboard()
        headers = api.headers("/v1/nodes")
        del headers[hmac.DATE_HEADER]
        response = await gateway.client.get("/v1/nodes", headers=headers)
        assert response.status == 406
        assert "X-Megam-DATE header is missing" in (await response.json())["msg"]

    async def test_an_unknown_algorithm_is_a_406(self, gateway: Any) -> None:
        api = await gateway.onboard()
        headers = {**api.headers("/v1/nodes"), hmac.ALG_HEADER: "md5"}
        response = await gateway.client.get("/v1/nodes", headers=headers)
        assert response.status == 406

    async def test_the_email_in_the_header_is_case_insensitive(self, gateway: Any) -> None:
        api = await gateway.onboard("erin@example.com")
        shouting = dataclasses.replace(api, email="ERIN@Example.COM")
        response = await shouting.get("/v1/nodes")
        assert response.status == 200

    async def test_old_dates_are_accepted_when_no_skew_window_is_set(self, gateway: Any) -> None:
        api = await gateway.onboard()
        headers = hmac.sign_headers(api.email, api.api_key, "/v1/nodes", date="2014-05-01 10:00")
        response = await gateway.client.get("/v1/nodes", headers=headers)
        assert response.status == 200

    async def test_onboarding_and_health_routes_are_open(self, gateway: Any) -> None:
        for path in ("/healthz", "/readyz", "/metrics"):
            response = await gateway.client.get(path)
            assert response.status == 200, path


class TestClockSkewWindow:
    @pytest.fixture
    async def strict(self, aiohttp_client: Any, embedded_bus: Any, make_app: Any) -> Any:
        from gateway.options import GatewayOptions

        client = await aiohttp_client(
            make_app(embedded_bus, GatewayOptions(clock_skew_seconds=300))
        )
        response = await client.post("/v1/accounts/content", json={"email": "f@example.com"})
        return client, (await response.json())["api_key"]

    async def test_a_current_date_passes(self, strict: Any) -> None:
        client, key = strict
        headers = hmac.sign_headers("f@example.com", key, "/v1/nodes")
        assert (await client.get("/v1/nodes", headers=headers)).status == 200

    async def test_a_date_outside_the_window_is_refused_with_the_reason(self, strict: Any) -> None:
        client, key = strict
        stale = hmac.format_date(time.time() - 3600)
        headers = hmac.sign_headers("f@example.com", key, "/v1/nodes", date=stale)
        response = await client.get("/v1/nodes", headers=headers)
        assert response.status == 401
        assert "away from the gateway's clock" in (await response.json())["msg"]

    async def test_an_unreadable_date_is_a_406(self, strict: Any) -> None:
        client, key = strict
        headers = hmac.sign_headers("f@example.com", key, "/v1/nodes", date="yesterday")
        response = await client.get("/v1/nodes", headers=headers)
        assert response.status == 406
