"""Fixtures for herk's tests: a bus (embedded, or the real RabbitMQ), herk nodes, recorders."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from herk_testkit import FAKES, EventLog, settings_for

from herk.acceptance import AcceptancePolicy
from herk.node import HerkNode
from megam import topology
from megam.bus import Bus
from megam.bus.amqp import AmqpBus
from megam.bus.embedded import EmbeddedBus
from megam.secrets import Sealer


async def _connected(kind: str, request: pytest.FixtureRequest) -> Bus:
    if kind == "embedded":
        bus: Bus = EmbeddedBus()
    else:
        bus = AmqpBus(request.getfixturevalue("amqp_url"), publish_timeout=5)
    await bus.connect()
    await bus.declare(topology.EXCHANGES, topology.HERK_QUEUES + topology.GATEWAY_QUEUES)
    return bus


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The herk node's data dir: where sleeper jobs write their pids and wait to be released."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(params=["embedded", "rabbitmq"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    """Each test that takes ``bus`` runs once on the embedded bus and once on RabbitMQ."""
    instance = await _connected(request.param, request)
    yield instance
    await instance.close()


@pytest.fixture
async def rabbit(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    """The real RabbitMQ only, for what only a real broker shows (redelivery after a crash)."""
    instance = await _connected("rabbitmq", request)
    yield instance
    await instance.close()


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(Fernet.generate_key())


@pytest.fixture
async def events(bus: Bus) -> EventLog:
    return await EventLog().attach(bus)


@pytest.fixture
def fakes_on_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the knife/chef-client stand-ins first on PATH and let their knobs reach jobs."""
    monkeypatch.setenv("PATH", f"{FAKES}:{os.environ['PATH']}")
    monkeypatch.setenv("MEGAM_HERK_PASSENV", "MEGAM_FAKE_*")
    return FAKES


@pytest.fixture
async def start_herk(tmp_path: Path, sealer: Sealer) -> AsyncIterator[Callable[..., object]]:
    """``await start_herk(bus, workers=2, actors_dir=..., policy=...)``: a started node, stopped
    afterwards."""
    nodes: list[HerkNode] = []

    async def start(bus: Bus, **options: object) -> HerkNode:
        heartbeat = float(options.pop("heartbeat_seconds", 5.0))  # type: ignore[arg-type]
        policy: AcceptancePolicy | None = options.pop("policy", None)  # type: ignore[assignment]
        settings = settings_for(tmp_path, **options)  # type: ignore[arg-type]
        node = HerkNode(settings, bus, sealer, heartbeat_seconds=heartbeat, policy=policy)
        await node.start()
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        await node.stop(grace=5)
