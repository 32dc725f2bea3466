"""Node metrics collected for real: /proc and nginx stub_status read, rates from counters, and
published as MetricEvents by the herk host (local nodes) and by ``megam agent`` (cloud nodes)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from herk.sampler import LocalNodeSampler
from megam import topology, wire
from megam.bus import Bus, Delivery
from megam.bus.amqp import AmqpBus
from megam.bus.embedded import EmbeddedBus
from megam.sampling import Sampler, parse_stub_status

MEGAM = str(Path(sys.executable).with_name("megam"))

NGINX_STUB_STATUS = """Active connections: 291
server accepts handled requests
 16630948 16630948 31070465
Reading: 6 Writing: 179 Waiting: 106
"""


class TestReading:
    def test_nginx_stub_status_is_parsed_as_gmond_named_it(self) -> None:
        assert parse_stub_status(NGINX_STUB_STATUS) == {
            "nginx_active_connections": 291.0,
            "nginx_accepts": 16630948.0,
            "nginx_handled": 16630948.0,
            "nginx_requests": 31070465.0,
            "nginx_reading": 6.0,
            "nginx_writing": 179.0,
            "nginx_waiting": 106.0,
        }

    def test_something_else_is_not_a_stub_status(self) -> None:
        assert parse_stub_status("<html>404</html>") == {}

    def test_a_first_sample_has_gauges_and_the_second_has_rates(self) -> None:
        sampler = Sampler(pid=os.getpid())
        first = sampler.sample()
        assert first["mem_total"] > first["mem_free"] > 0
        assert first["proc_rss_bytes"] > 0
        assert "cpu_idle" not in first, "a rate needs two samples"
        sum(i * i for i in range(300_000))  # spend some CPU between the samples
        second = sampler.sample()
        assert 99.0 <= second["cpu_user"] + second["cpu_system"] + second["cpu_idle"] <= 100.1
        assert second["proc_cpu_percent"] >= 0
        assert second["bytes_in"] >= 0


@pytest.fixture
def local_node(tmp_path: Path) -> tuple[Path, str]:
    """A real local-cloud node: the node server process the local provisioner starts."""
    home = tmp_path / "nodes" / "ACT123" / "web1.megam.local"
    home.mkdir(parents=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "herk.provision.node_server", "--home", str(home)],
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while not (home / "run" / "port").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{(home / 'run' / 'port').read_text().strip()}"
    yield home, url
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


class Metrics:
    def __init__(self) -> None:
        self.events: list[wire.MetricEvent] = []

    async def __call__(self, delivery: Delivery) -> None:
        self.events.append(wire.decode(delivery.body, wire.MetricEvent))
        await delivery.ack()

    async def wait_for(self, count: int, timeout: float = 30) -> list[wire.MetricEvent]:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                await asyncio.sleep(0.05)
        return self.events


@pytest.fixture
async def embedded_bus() -> AsyncIterator[Bus]:
    bus = EmbeddedBus()
    await bus.connect()
    await bus.declare(topology.EXCHANGES, ())
    yield bus
    await bus.close()


async def test_the_herk_host_samples_its_local_nodes(
    local_node: tuple[Path, str], embedded_bus: Bus
) -> None:
    home, url = local_node
    metrics = Metrics()
    await embedded_bus.consume_temporary([(topology.EVENTS.name, "metric.#")], metrics)
    sampler = LocalNodeSampler(home.parent.parent, embedded_bus, interval=0.2)
    assert await sampler.sample_once() == 1
    for _ in range(30):
        with urllib.request.urlopen(url, timeout=5):
            pass
    assert await sampler.sample_once() == 1
    first, second = await metrics.wait_for(2)
    assert (second.node, second.account) == ("web1.megam.local", "ACT123")
    assert second.samples["nginx_requests"] - first.samples["nginx_requests"] >= 30
    assert second.samples["http_requests_per_min"] > 0, "the rate comes from the counter"
    assert second.samples["proc_rss_bytes"] > 0


async def test_a_stopped_local_node_is_no_longer_sampled(
    local_node: tuple[Path, str], embedded_bus: Bus
) -> None:
    home, _ = local_node
    sampler = LocalNodeSampler(home.parent.parent, embedded_bus, interval=0.2)
    (home / "run" / "pid").write_text("999999999")
    assert await sampler.sample_once() == 0


async def test_megam_agent_publishes_samples_over_rabbitmq(
    local_node: tuple[Path, str], amqp_url: str
) -> None:
    _, url = local_node
    bus = AmqpBus(amqp_url)
    await bus.connect()
    metrics = Metrics()
    await bus.declare(topology.EXCHANGES, ())
    await bus.consume_temporary([(topology.EVENTS.name, "metric.web1.megam.local")], metrics)
    agent = subprocess.Popen(
        [
            MEGAM,
            "agent",
            "--node",
            "web1.megam.local",
            "--account",
            "ACT123",
            "--amqp",
            amqp_url,
            "--nginx-status",
            f"{url}/nginx_status",
            "--interval",
            "0.3",
        ]
    )
    try:
        events = await metrics.wait_for(3)
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0, "the agent stops cleanly on SIGTERM"
        await bus.close()
    assert all(e.account == "ACT123" for e in events)
    assert "http_requests_per_min" in events[-1].samples
    assert "load_one" in events[-1].samples


def test_megam_agent_refuses_a_bad_node_name() -> None:
    refused = subprocess.run(
        [MEGAM, "agent", "--node", "Not A Node", "--account", "ACT1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 3
    assert "node" in refused.stderr
