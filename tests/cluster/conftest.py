"""A real 3-node RabbitMQ cluster beside the machine's broker (scripts/rabbitmq-cluster)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiormq
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rabbitmq-cluster"
NODES = 3


def _free_base_port() -> int:
    """A base port whose AMQP ports (base..base+2) and distribution ports (+20000) are free."""
    for base in range(5701, 6500, NODES):
        ports = [base + i for i in range(NODES)] + [base + 20000 + i for i in range(NODES)]
        if all(_port_is_free(port) for port in ports):
            return base
    raise RuntimeError("no free port range for a RabbitMQ cluster")


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Cluster:
    base_port: int
    directory: Path

    def _run(self, *args: str, timeout: float = 180) -> str:
        env = {**os.environ, "MEGAM_RABBIT_CLUSTER_DIR": str(self.directory)}
        done = subprocess.run(
            [str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmq-cluster {' '.join(args)}: {done.stderr or done.stdout}")
        return done.stdout.strip()

    def port(self, node: int) -> int:
        return self.base_port + node - 1

    def node_of_port(self, port: int) -> int:
        return port - self.base_port + 1

    def kill(self, node: int) -> None:
        self._run("kill", str(node))

    def revive(self, node: int) -> None:
        self._run("revive", str(node))

    def ctl(self, node: int, *args: str) -> str:
        env = {
            **os.environ,
            "RABBITMQ_CONF_ENV_FILE": str(self.directory / f"node-{node}" / "rabbitmq-env.conf"),
        }
        done = subprocess.run(
            ["rabbitmqctl", "-q", "-n", f"megam-{self.base_port}-{node}@localhost", *args],
            env=env, capture_output=True, text=True, timeout=60,
        )
        if done.returncode != 0:
            raise subprocess.CalledProcessError(
                done.returncode, done.args, done.stdout, done.stderr.strip()
            )
        return done.stdout

    def running(self) -> list[int]:
        return [node for node in range(1, NODES + 1) if self.alive(node)]

    def revive_dead(self) -> None:
        for node in range(1, NODES + 1):
            if not self.alive(node):
                self.revive(node)

    def alive(self, node: int) -> bool:
        try:
            self.ctl(node, "status")
        except subprocess.CalledProcessError:
            return False
        return True

    def vhost_urls(self, vhost: str) -> str:
        return ",".join(
            f"amqp://guest:guest@127.0.0.1:{self.port(n)}/{vhost}" for n in range(1, NODES + 1)
        )


@pytest.fixture(scope="session")
def rabbit_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = Path("/tmp") / f"megam-cluster-{uuid.uuid4().hex[:8]}"
    cluster = Cluster(_free_base_port(), directory)
    try:
        cluster._run("start", str(NODES), str(cluster.base_port))
    except (RuntimeError, subprocess.TimeoutExpired):
        cluster._run("stop", str(NODES))
        raise
    yield cluster
    _keep_logs(cluster.directory, tmp_path_factory.getbasetemp() / "rabbitmq-logs")
    cluster._run("stop", str(NODES))


def _keep_logs(directory: Path, into: Path) -> None:
    """The nodes' own logs, kept beside the test's (stop removes the cluster's directory)."""
    for node_logs in directory.glob("node-*/log"):
        shutil.copytree(node_logs, into / node_logs.parent.name, dirs_exist_ok=True)


def _until_streams_can_be_declared(urls: list[str], timeout: float = 90) -> None:
    """Every node can declare a stream (herk.cancels is one). A revived node serves AMQP
    before its stream coordinator member is back: the next test's declare on it got
    541 "Cannot declare a queue 'herk.cancels' ...: {error,coordinator_unavailable}"."""

    async def declare_a_stream(url: str) -> None:
        connection = await aiormq.connect(url)
        try:
            channel = await connection.channel()
            await channel.queue_declare(
                "cluster.ready", durable=True, arguments={"x-queue-type": "stream"}
            )
            await channel.queue_delete("cluster.ready")
        finally:
            await connection.close()

    deadline = time.monotonic() + timeout
    for url in urls:
        while True:
            try:
                asyncio.run(declare_a_stream(url))
                break
            except (aiormq.exceptions.AMQPError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


@pytest.fixture
def cluster_urls(rabbit_cluster: Cluster) -> Iterator[str]:
    """A vhost of its own on the cluster, as the comma list a service is given."""
    rabbit_cluster.revive_dead()
    vhost = f"megam-test-{uuid.uuid4().hex[:8]}"
    rabbit_cluster.ctl(1, "add_vhost", vhost)
    rabbit_cluster.ctl(1, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    urls = rabbit_cluster.vhost_urls(vhost)
    _until_streams_can_be_declared(urls.split(","))
    yield urls
    rabbit_cluster.revive_dead()  # a test that killed a node leaves the cluster whole again
    # Best effort: a node that just rejoined can refuse while its queues recover, and the
    # whole cluster goes at the end of the session anyway.
    with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
        rabbit_cluster.ctl(1, "delete_vhost", vhost)
