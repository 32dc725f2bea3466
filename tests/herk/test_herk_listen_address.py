"""A herk node's ``/metrics`` and ``/healthz`` listen on this machine only unless
``MEGAM_HERK_METRICS_HOST`` says otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from pathlib import Path

import pytest
from herk_testkit import settings_for

from herk.main import METRICS_HOST_VARIABLE, metrics_host, serve
from tests.conftest import refuses_connections


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TestMetricsAddress:
    def test_defaults_to_loopback(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv(METRICS_HOST_VARIABLE, raising=False)
        assert metrics_host() == "127.0.0.1"

    def test_the_variable_opens_it_wider(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(METRICS_HOST_VARIABLE, "0.0.0.0")
        assert metrics_host() == "0.0.0.0"

    async def test_a_running_node_is_reachable_on_loopback_only(
        self,
        tmp_path: Path,
        amqp_url: str,
        outside_address: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.delenv(METRICS_HOST_VARIABLE, raising=False)
        monkeypatch.setenv("MEGAM_HERK_STOP_GRACE", "0")
        port = free_port()
        settings = dataclasses.replace(
            settings_for(tmp_path), amqp_url=amqp_url, herk_metrics_port=port
        )
        node = asyncio.create_task(serve(settings))
        try:
            async with asyncio.timeout(60):
                while await refuses_connections("127.0.0.1", port):
                    assert not node.done(), node
                    await asyncio.sleep(0.05)
            assert await refuses_connections(outside_address, port)
        finally:
            node.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await node
