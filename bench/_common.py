"""Helpers shared by the benchmarks: a private RabbitMQ vhost, percentiles, free ports."""

from __future__ import annotations

import contextlib
import socket
import statistics
import subprocess
import uuid
from collections.abc import Iterator


@contextlib.contextmanager
def private_vhost(host: str = "127.0.0.1:5672") -> Iterator[str]:
    """An AMQP URL on a fresh vhost, deleted afterwards, so runs never share queues."""
    vhost = f"megam-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True
    )
    try:
        yield f"amqp://guest:guest@{host}/{vhost}"
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False)


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(latencies_s: list[float]) -> str:
    ms = [x * 1000 for x in latencies_s]
    return (
        f"p50 {percentile(ms, 0.5):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms, "
        f"mean {statistics.fmean(ms):.2f} ms"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
