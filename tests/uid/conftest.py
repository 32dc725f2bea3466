"""Shared pieces of the uid tests: a hand-driven clock and both kinds of lease store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from uid.amqp_lease import AmqpLeaser
from uid.file_lease import FileLeaser
from uid.lease import Leaser

START_MS = 1_700_000_000_000


class ManualClock:
    """Wall-clock milliseconds that move only when a test says so (thread-safe)."""

    def __init__(self, now_ms: int = START_MS) -> None:
        self._now = now_ms
        self._lock = threading.Lock()
        self.reads = 0

    def __call__(self) -> int:
        with self._lock:
            self.reads += 1
            return self._now

    def advance(self, ms: int = 1) -> None:
        with self._lock:
            self._now += ms

    def set(self, now_ms: int) -> None:
        with self._lock:
            self._now = now_ms


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["file", "rabbitmq"])
def leaser_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def lease_location(leaser_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where leases live: a directory for file leases, an AMQP URL (private vhost) otherwise."""
    if leaser_kind == "file":
        return str(tmp_path / "uid")
    return request.getfixturevalue("amqp_url")


def make_leaser(kind: str, location: str) -> Leaser:
    return FileLeaser(Path(location)) if kind == "file" else AmqpLeaser(location)


@pytest.fixture
def leaser(leaser_kind: str, lease_location: str) -> Iterator[Leaser]:
    yield make_leaser(leaser_kind, lease_location)
