"""Secrets through herk: hostile values never leave herk in clear, in any form herk writes them,
and herk runs only a knife.rb the tenant handed over sealed, never a path on its host.

The fake knife (``MEGAM_FAKE_DEBUG=2``) prints every setting it loaded and then its config and
credentials files line by line, as they are on disk: so the secrets reach herk's log stream raw,
Ruby-escaped and, for google_json, as many lines.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from herk_testkit import EventLog, job_request, submit

from megam import topology
from megam.bus import Bus, Delivery
from megam.params import KNIFE_RB_REFUSED
from megam.secrets import Sealer
from tests.hostile_secrets import GOOGLE_JSON, HOSTILE, PLAIN_ACCESS_KEY, found_in

EC2 = {"cloud": {"cctype": "ec2", "spec": {"image": "ami-0abc1234"}}, "run_list": ["role[web]"]}
GOOGLE = {
    "cloud": {
        "cctype": "google",
        "spec": {"image": "debian-12", "flavor": "e2-small"},
        "access": {"zone": "europe-west1-b"},
    },
    "run_list": [],
}


class RawEvents:
    """The bodies of everything published on ``megam.events``, as bytes on the wire."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def attach(self, bus: Bus) -> RawEvents:
        await bus.consume_temporary([(topology.EVENTS.name, "#")], self._receive, prefetch=500)
        return self

    async def _receive(self, delivery: Delivery) -> None:
        self.bodies.append(delivery.body)
        await delivery.ack()

    def text(self) -> str:
        return b"\n".join(self.bodies).decode()


@pytest.fixture
def debug_knife(monkeypatch: pytest.MonkeyPatch, fakes_on_path: Path) -> None:
    monkeypatch.setenv("MEGAM_FAKE_DEBUG", "2")


class TestHostileSecretsAreMaskedInEveryForm:
    @pytest.mark.parametrize("kind", sorted(HOSTILE))
    async def test_an_ec2_secret_never_reaches_the_events(
        self, kind: str, bus: Bus, events: EventLog, start_herk, sealer: Sealer, debug_knife: None
    ) -> None:
        raw = await RawEvents().attach(bus)
        secrets = {"aws_access_key_id": PLAIN_ACCESS_KEY, "aws_secret_access_key": HOSTILE[kind]}
        await start_herk(bus)
        request = await submit(bus, job_request("knife.create", EC2, sealed=sealer.seal(secrets)))

        done = await events.terminal(request.job_id)
        assert done.state == "succeeded", done.reason
        text = events.text(request.job_id)
        assert "DEBUG: knife.rb: knife[:aws_secret_access_key] = '****" in text, "printed masked"
        await events.wait_until(lambda: len(raw.bodies) >= len(events.logs), "the raw events")
        assert found_in(raw.text(), list(secrets.values())) == []

    async def test_a_multi_line_google_json_is_masked_line_by_line(
        self, bus: Bus, events: EventLog, start_herk, sealer: Sealer, debug_knife: None
    ) -> None:
        raw = await RawEvents().attach(bus)
        secrets = {"gce_project": "megam-hostile-project", "google_json": GOOGLE_JSON}
        await start_herk(bus)
        request = await submit(
            bus, job_request("knife.create", GOOGLE, sealed=sealer.seal(secrets))
        )

        done = await events.terminal(request.job_id)
        assert done.state == "succeeded", done.reason
        text = events.text(request.job_id)
        assert "DEBUG: google.json:   ****" in text, "the file was printed, each line masked"
        await events.wait_until(lambda: len(raw.bodies) >= len(events.logs), "the raw events")
        assert found_in(raw.text(), list(secrets.values())) == []


class TestTheTenantsKnifeRb:
    async def test_a_knife_rb_handed_over_sealed_is_loaded(
        self, bus: Bus, events: EventLog, start_herk, sealer: Sealer, debug_knife: None
    ) -> None:
        secrets = {
            "aws_access_key_id": PLAIN_ACCESS_KEY,
            "aws_secret_access_key": "s3cr3t-key-1234",
            "knife_rb": "knife[:tenant_setting] = 'from-the-tenant'\n",
        }
        await start_herk(bus)
        request = await submit(bus, job_request("knife.create", EC2, sealed=sealer.seal(secrets)))

        done = await events.terminal(request.job_id)
        assert done.state == "succeeded", done.reason
        assert "DEBUG: knife[:tenant_setting] = from-the-tenant" in events.text(request.job_id)

    async def test_a_path_on_the_herk_host_is_refused_with_the_reason(
        self, bus: Bus, events: EventLog, start_herk, sealer: Sealer, tmp_path: Path
    ) -> None:
        planted = tmp_path / "planted.rb"
        ran = tmp_path / "ran"
        planted.write_text(f"File.write('{ran}', 'pwned')\n")
        secrets = {"aws_access_key_id": PLAIN_ACCESS_KEY, "aws_secret_access_key": "s3cr3t-1234"}
        await start_herk(bus)
        params = {**EC2, "knife_rb": str(planted)}
        request = await submit(
            bus, job_request("knife.create", params, sealed=sealer.seal(secrets))
        )

        done = await events.terminal(request.job_id)
        assert done.state == "rejected"
        assert KNIFE_RB_REFUSED in done.reason
        assert not ran.exists()
