"""Fault tests: real herk node processes, the real RabbitMQ (a private vhost), a recorder in the
gateway's place. Each test is bounded in time and asserts that every job ends, none is lost, and
no job that is not idempotent ran twice."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from megam.bus.amqp import AmqpBus
from tests.faults.faultkit import HerkProcesses, Recorder, herk_processes, open_broker, write_actors


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def actors(tmp_path: Path, runs: Path) -> Path:
    return write_actors(tmp_path / "actors", runs)


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[AmqpBus]:
    """The test's own connection: it publishes requests and plays the gateway."""
    async with open_broker(amqp_url) as bus:
        yield bus


@pytest.fixture
async def recorder(broker: AmqpBus) -> AsyncIterator[Recorder]:
    instance = await Recorder().attach(broker)
    yield instance
    await instance.detach()


@pytest.fixture
def herk_nodes(amqp_url: str, actors: Path, tmp_path: Path) -> Iterator[HerkProcesses]:
    with herk_processes(amqp_url, actors, tmp_path / "data") as nodes:
        yield nodes
