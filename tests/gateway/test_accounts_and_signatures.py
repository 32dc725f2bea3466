"""Onboarding and Megam's HMAC request signatures (docs/original.md §2.1)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac as std_hmac
import time
from typing import Any

import pytest

from gateway.options import GatewayOptions
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

    async def test_sha256_signature_said_to_be_sha1_is_a_406(self, gateway: Any) -> None:
        api = await gateway.onboard()
        headers = hmac.sign_headers(api.email, api.api_key, "/v1/auth", b"", "sha256")
        headers[hmac.ALG_HEADER] = "sha1"
        response = await gateway.client.post("/v1/auth", headers=headers)
        assert response.status == 406
        assert (await response.json())["msg"] == (
            "the signature in X-Megam-HMAC has 64 hex digits, but an HMAC-SHA1 has 40"
        )

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

    async def test_old_dates_are_accepted_only_when_the_window_is_off(
        self, gateway_with: Any
    ) -> None:
        gateway = await gateway_with(clock_skew_seconds=None)
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


def original_client_headers(email: str, api_key: str, path: str, body: bytes = b"") -> dict:
    """What the 2014 Ruby gem sends (megam_api@233b137 ``encode_header``), computed here by
    hand: Base64 with its newline, then the whole string right-stripped, HMAC-SHA1 in hex."""
    date = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    digest = base64.encodebytes(hashlib.md5(body).digest()).decode()
    data = f"{date}\n{path}\n{digest}".rstrip()
    signature = std_hmac.new(api_key.encode(), data.encode(), hashlib.sha1).hexdigest()
    return {"X-Megam-HMAC": f"{email}:{signature}", "X-Megam-Date": date}


def client_2016_headers(
    email: str, api_key: str, path: str, body: bytes = b"", *, date: str | None = None
) -> dict:
    """The 2016 client's scheme (docs/original.md §2.1): HMAC-SHA256 in hex over the date, the
    path and the URL-safe Base64 MD5 of the body; no header says which hash."""
    date = date or time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    digest = base64.urlsafe_b64encode(hashlib.md5(body).digest()).decode()
    data = f"{date}\n{path}\n{digest}"
    signature = std_hmac.new(api_key.encode(), data.encode(), hashlib.sha256).hexdigest()
    return {"X-Megam-HMAC": f"{email}:{signature}", "X-Megam-DATE": date}


def body_whose_digest_is_not_url_safe() -> bytes:
    """A body whose standard Base64 MD5 has a + or /, so the two encodings differ."""
    for n in range(1000):
        body = b'{"email": "x%d@example.com"}' % n
        if set(base64.b64encode(hashlib.md5(body).digest())) & set(b"+/"):
            return body
    raise AssertionError("no such body in 1000 tries")


class TestSignaturesExpire:
    async def test_the_window_is_on_by_default_in_minutes(self) -> None:
        assert GatewayOptions().clock_skew_seconds == 15 * 60

    @pytest.mark.parametrize(("minutes", "seconds"), [("5", 300.0), ("0", None), ("", 900.0)])
    def test_the_window_is_set_in_minutes(
        self, monkeypatch: pytest.MonkeyPatch, minutes: str, seconds: float | None
    ) -> None:
        monkeypatch.setenv("MEGAM_GATEWAY_CLOCK_SKEW_MINUTES", minutes)
        assert GatewayOptions.from_env().clock_skew_seconds == seconds

    async def test_a_signature_from_2013_is_refused(self, gateway: Any) -> None:
        api = await gateway.onboard()
        headers = hmac.sign_headers(api.email, api.api_key, "/v1/nodes", date="2013-05-01 10:00")
        response = await gateway.client.get("/v1/nodes", headers=headers)
        assert response.status == 401
        error = await response.json()
        assert error["msg"].startswith("X-Megam-DATE 2013-05-01 10:00 is ")
        assert "the signature has expired" in error["msg"]
        assert "MEGAM_GATEWAY_CLOCK_SKEW_MINUTES" in error["more"]

    async def test_a_nine_day_old_signed_launch_is_refused_and_creates_nothing(
        self, gateway: Any
    ) -> None:
        api = await gateway.tenant()
        body = b'{"node_name": "replayed.local", "predefcloud": "local"}'
        old = hmac.format_date(time.time() - 9 * 86400)
        headers = hmac.sign_headers(api.email, api.api_key, "/v1/nodes/content", body, date=old)
        response = await gateway.client.post("/v1/nodes/content", data=body, headers=headers)
        assert response.status == 401
        assert (await api.ok("/v1/nodes"))["results"] == []

    async def test_a_replayed_request_is_refused_once_the_window_has_passed(
        self, gateway: Any
    ) -> None:
        api = await gateway.onboard()
        captured = hmac.sign_headers(
            api.email, api.api_key, "/v1/nodes", date=hmac.format_date(time.time() - 16 * 60)
        )
        response = await gateway.client.get("/v1/nodes", headers=captured)
        assert response.status == 401

    async def test_a_date_a_few_minutes_off_is_accepted(self, gateway: Any) -> None:
        api = await gateway.onboard()
        for offset in (-14 * 60, -60, 0, 60, 14 * 60):
            date = hmac.format_date(time.time() + offset)
            headers = hmac.sign_headers(api.email, api.api_key, "/v1/nodes", date=date)
            assert (await gateway.client.get("/v1/nodes", headers=headers)).status == 200, offset

    async def test_the_original_clients_requests_are_accepted(self, gateway: Any) -> None:
        api = await gateway.onboard()
        response = await gateway.client.get(
            "/v1/nodes", headers=original_client_headers(api.email, api.api_key, "/v1/nodes")
        )
        assert response.status == 200
        body = b'{"email": "%s"}' % api.email.encode()
        headers = original_client_headers(api.email, api.api_key, "/v1/auth", body)
        response = await gateway.client.post("/v1/auth", data=body, headers=headers)
        assert response.status == 200


class TestClientsSigningLocalTime:
    """The 2014 client signs its machine's local time; an operator may name the zones."""

    INDIA = 5 * 3600 + 30 * 60

    async def test_a_local_time_is_refused_unless_its_zone_is_named(
        self, gateway_with: Any
    ) -> None:
        gateway = await gateway_with()
        api = await gateway.onboard()
        local = hmac.format_date(time.time() + self.INDIA)
        headers = hmac.sign_headers(api.email, api.api_key, "/v1/nodes", date=local)
        assert (await gateway.client.get("/v1/nodes", headers=headers)).status == 401

    async def test_a_local_time_of_a_named_zone_is_accepted(self, gateway_with: Any) -> None:
        gateway = await gateway_with(client_utc_offsets=(self.INDIA,))
        api = await gateway.onboard()
        for now in (time.time(), time.time() + self.INDIA):  # UTC still works
            date = hmac.format_date(now)
            headers = hmac.sign_headers(api.email, api.api_key, "/v1/nodes", date=date)
            assert (await gateway.client.get("/v1/nodes", headers=headers)).status == 200

    async def test_an_old_local_time_of_a_named_zone_is_refused(self, gateway_with: Any) -> None:
        gateway = await gateway_with(client_utc_offsets=(self.INDIA,))
        api = await gateway.onboard()
        old = hmac.format_date(time.time() + self.INDIA - 9 * 86400)
        headers = hmac.sign_headers(api.email, api.api_key, "/v1/nodes", date=old)
        assert (await gateway.client.get("/v1/nodes", headers=headers)).status == 401

    def test_zones_are_named_as_utc_offsets(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MEGAM_GATEWAY_CLIENT_UTC_OFFSETS", "+05:30, -08:00")
        assert GatewayOptions.from_env().client_utc_offsets == (self.INDIA, -8 * 3600)

    @pytest.mark.parametrize("raw", ["5:30", "+5:30", "+15:00", "+05:60", "IST"])
    def test_a_zone_that_is_no_offset_is_refused(
        self, monkeypatch: pytest.MonkeyPatch, raw: str
    ) -> None:
        monkeypatch.setenv("MEGAM_GATEWAY_CLIENT_UTC_OFFSETS", raw)
        with pytest.raises(ValueError, match="MEGAM_GATEWAY_CLIENT_UTC_OFFSETS must be UTC"):
            GatewayOptions.from_env()


class TestTheQueryIsSigned:
    async def test_a_signature_for_one_query_is_refused_for_another(self, gateway: Any) -> None:
        api = await gateway.onboard()
        signed = api.headers("/v1/logs/search?q=deploy")
        response = await gateway.client.get("/v1/logs/search?q=secret", headers=signed)
        assert response.status == 401
        error = await response.json()
        assert "?query when the request has one" in error["more"]

    async def test_a_signature_without_the_query_is_refused_with_one(self, gateway: Any) -> None:
        api = await gateway.onboard()
        signed = api.headers("/v1/logs/search")
        response = await gateway.client.get("/v1/logs/search?q=anything", headers=signed)
        assert response.status == 401

    async def test_the_query_as_signed_is_accepted(self, gateway: Any) -> None:
        api = await gateway.onboard()
        assert (await api.ok("/v1/logs/search", q="two words", node="a.local"))["results"] == []

    @pytest.mark.parametrize("sent", ["q=two+words", "q=two%20words", "q=%74wo%20words"])
    async def test_any_encoding_of_the_signed_pairs_is_accepted(
        self, gateway: Any, sent: str
    ) -> None:
        """Browsers send a space as +, our clients as %20; proxies may re-encode."""
        api = await gateway.onboard()
        signed = api.headers(hmac.request_target("/v1/logs/search", {"q": "two words"}))
        response = await gateway.client.get(f"/v1/logs/search?{sent}", headers=signed)
        assert response.status == 200, await response.text()

    async def test_a_query_signed_as_sent_is_accepted(self, gateway: Any) -> None:
        api = await gateway.onboard()
        target = "/v1/logs/search?q=two+words"  # as a browser's URLSearchParams writes it
        response = await gateway.client.get(target, headers=api.headers(target))
        assert response.status == 200

    async def test_a_reordered_query_is_refused(self, gateway: Any) -> None:
        api = await gateway.onboard()
        signed = api.headers("/v1/logs/search?q=a&node=b.local")
        response = await gateway.client.get("/v1/logs/search?node=b.local&q=a", headers=signed)
        assert response.status == 401


class TestThe2016Client:
    async def test_its_sha256_signature_is_accepted_without_a_header(self, gateway: Any) -> None:
        api = await gateway.onboard()
        headers = client_2016_headers(api.email, api.api_key, "/v1/nodes")
        assert hmac.ALG_HEADER not in headers
        assert (await gateway.client.get("/v1/nodes", headers=headers)).status == 200

    async def test_its_url_safe_body_digest_is_accepted(self, gateway: Any) -> None:
        api = await gateway.onboard()
        body = body_whose_digest_is_not_url_safe()
        headers = client_2016_headers(api.email, api.api_key, "/v1/auth", body)
        response = await gateway.client.post("/v1/auth", data=body, headers=headers)
        assert response.status == 200, await response.text()

    async def test_its_signature_with_another_key_is_refused(self, gateway: Any) -> None:
        api = await gateway.onboard()
        headers = client_2016_headers(api.email, "not-the-key-of-this-account", "/v1/nodes")
        response = await gateway.client.get("/v1/nodes", headers=headers)
        assert response.status == 401
        assert "HMAC-SHA256" in (await response.json())["more"]

    async def test_its_signatures_expire_too(self, gateway: Any) -> None:
        api = await gateway.onboard()
        headers = client_2016_headers(api.email, api.api_key, "/v1/nodes", date="2016-09-01 10:00")
        assert (await gateway.client.get("/v1/nodes", headers=headers)).status == 401

    async def test_an_explicit_sha256_header_still_works(self, gateway: Any) -> None:
        api = dataclasses.replace(await gateway.onboard(), algorithm="sha256")
        assert api.headers("/v1/nodes")[hmac.ALG_HEADER] == "sha256"
        assert (await api.get("/v1/nodes")).status == 200

    async def test_a_sha256_signature_without_the_header_is_detected(self, gateway: Any) -> None:
        api = await gateway.onboard()
        headers = hmac.sign_headers(api.email, api.api_key, "/v1/auth", b"", "sha256")
        del headers[hmac.ALG_HEADER]
        assert (await gateway.client.post("/v1/auth", headers=headers)).status == 200

    @pytest.mark.parametrize("digits", [8, 39, 41, 63, 65, 128])
    async def test_a_signature_of_another_length_is_a_406(
        self, gateway: Any, digits: int
    ) -> None:
        headers = {hmac.HMAC_HEADER: "a@example.com:" + "a" * digits, hmac.DATE_HEADER: "x"}
        response = await gateway.client.get("/v1/nodes", headers=headers)
        assert response.status == 406
        assert (await response.json())["msg"] == (
            f"the signature in X-Megam-HMAC has {digits} hex digits"
        )
