"""The uid service listens on this machine only unless told otherwise (``--host``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from megam.config import Settings
from tests.conftest import refuses_connections
from uid.main import _parser, start


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.delenv("MEGAM_AMQP_URL", raising=False)
    return Settings.from_env(data_dir=tmp_path, uid_port=0)


class TestListenAddress:
    async def test_by_default_only_loopback_is_reachable(
        self, settings: Settings, outside_address: str
    ) -> None:
        service = await start(settings)
        try:
            assert service.runner.addresses[0][0] == "127.0.0.1"
            assert not await refuses_connections("127.0.0.1", service.port)
            assert await refuses_connections(outside_address, service.port)
        finally:
            await service.stop()

    async def test_a_host_given_opens_it_wider(
        self, settings: Settings, outside_address: str
    ) -> None:
        service = await start(settings, host="0.0.0.0")
        try:
            assert not await refuses_connections(outside_address, service.port)
        finally:
            await service.stop()

    def test_the_command_defaults_to_loopback(self) -> None:
        assert _parser().parse_args([]).host == "127.0.0.1"
        assert _parser().parse_args(["--host", "0.0.0.0"]).host == "0.0.0.0"
