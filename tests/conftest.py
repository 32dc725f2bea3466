"""Shared fixtures. Tests run on uvloop, against the real RabbitMQ in a private vhost."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest
import uvloop

AMQP_HOST = os.environ.get("MEGAM_TEST_AMQP_HOST", "127.0.0.1:5672")


def pytest_asyncio_loop_factories(config, item):
    return {"uvloop": uvloop.new_event_loop}


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def rabbitmq_vhost() -> Iterator[str]:
    """A vhost of our own, so concurrent test runs never share queues."""
    vhost = f"megam-test-{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield vhost
    _rabbitmqctl("delete_vhost", vhost)


@pytest.fixture
def amqp_url(rabbitmq_vhost: str) -> Iterator[str]:
    """A fresh vhost per test: queues start empty and nothing leaks between tests."""
    vhost = f"{rabbitmq_vhost}-{uuid.uuid4().hex[:6]}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@{AMQP_HOST}/{vhost}"
    _rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(scope="session")
def outside_address() -> str:
    """An address of this machine that is not loopback: a service listening on 127.0.0.1 only
    is not reachable on it."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))  # UDP: nothing is sent, the route picks one
            address = probe.getsockname()[0]
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        pytest.skip("this machine has no address but loopback")
    return address


async def refuses_connections(host: str, port: int) -> bool:
    import asyncio

    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return True
    writer.close()
    return False
