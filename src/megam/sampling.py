"""Node metrics read the way Megam's nodes reported them (Ganglia's gmond and its nginx_status
module, docs/original.md §7), with rates computed from counters between two samples.

Pure reading and arithmetic: the herk host (for local nodes) and ``megam agent`` (on cloud
nodes) both sample with :class:`Sampler` and publish :class:`megam.wire.MetricEvent`s.

Names: ``load_one``; ``cpu_user``, ``cpu_system``, ``cpu_idle`` (% of the interval);
``mem_total``, ``mem_free``, ``mem_cached`` (bytes); ``bytes_in``, ``bytes_out`` (bytes/s) and
``pkts_in``, ``pkts_out`` (/s) over every interface but loopback; from nginx ``stub_status``:
``nginx_active_connections``, ``nginx_requests`` (the counter) and ``http_requests_per_min``;
for one process: ``proc_cpu_percent`` and ``proc_rss_bytes``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import time
import urllib.request
from pathlib import Path

from megam import log, topology, wire
from megam.bus import Bus, BusError
from megam.procfs import stat_fields

logger = log.get("megam.sampling")

_STUB = re.compile(
    r"Active connections:\s*(?P<active>\d+).*?server accepts handled requests\s*"
    r"(?P<accepts>\d+)\s+(?P<handled>\d+)\s+(?P<requests>\d+).*?"
    r"Reading:\s*(?P<reading>\d+)\s*Writing:\s*(?P<writing>\d+)\s*Waiting:\s*(?P<waiting>\d+)",
    re.DOTALL,
)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def parse_stub_status(text: str) -> dict[str, float]:
    """nginx ``stub_status`` → ``nginx_*`` values; empty when the text is not one."""
    match = _STUB.search(text)
    if match is None:
        return {}
    return {
        f"nginx_{'active_connections' if k == 'active' else k}": float(v)
        for k, v in match.groupdict().items()
    }


def fetch_stub_status(url: str, timeout: float = 2.0) -> dict[str, float]:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"nginx status URL must be http(s): {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - checked above
            return parse_stub_status(resp.read(65536).decode(errors="replace"))
    except OSError:
        return {}


@dataclasses.dataclass(frozen=True, slots=True)
class _Counters:
    at: float
    cpu: tuple[int, int, int, int] | None  # user, system, idle, total jiffies
    net: tuple[int, int, int, int] | None  # bytes in, bytes out, packets in, packets out
    requests: float | None
    proc_cpu: float | None  # seconds of CPU used by the process


class Sampler:
    """Takes samples of one node; every sample after the first carries rates."""

    def __init__(
        self,
        *,
        proc: Path = Path("/proc"),
        nginx_status_url: str | None = None,
        pid: int | None = None,
    ) -> None:
        self.proc = proc
        self.nginx_status_url = nginx_status_url
        self.pid = pid
        self._previous: _Counters | None = None

    def sample(self) -> dict[str, float]:
        values: dict[str, float] = {}
        values.update(self._load())
        values.update(self._memory())
        nginx = fetch_stub_status(self.nginx_status_url) if self.nginx_status_url else {}
        values.update(
            {k: v for k, v in nginx.items() if k in ("nginx_active_connections", "nginx_requests")}
        )
        counters = _Counters(
            time.monotonic(),
            self._cpu(),
            self._net(),
            nginx.get("nginx_requests"),
            self._proc_cpu(),
        )
        if self.pid is not None:
            rss = self._proc_rss()
            if rss is not None:
                values["proc_rss_bytes"] = rss
        if self._previous is not None:
            values.update(_rates(self._previous, counters))
        self._previous = counters
        return values

    def _read(self, *parts: str) -> str | None:
        try:
            return self.proc.joinpath(*parts).read_text()
        except OSError:
            return None

    def _load(self) -> dict[str, float]:
        text = self._read("loadavg")
        return {"load_one": float(text.split()[0])} if text else {}

    def _memory(self) -> dict[str, float]:
        text = self._read("meminfo")
        if not text:
            return {}
        fields = {}
        for line in text.splitlines():
            name, _, rest = line.partition(":")
            if rest.strip():
                fields[name] = float(rest.split()[0]) * 1024  # meminfo speaks kB
        wanted = {"mem_total": "MemTotal", "mem_free": "MemFree", "mem_cached": "Cached"}
        return {ours: fields[theirs] for ours, theirs in wanted.items() if theirs in fields}

    def _cpu(self) -> tuple[int, int, int, int] | None:
        text = self._read("stat")
        if not text or not text.startswith("cpu "):
            return None
        jiffies = [int(x) for x in text.splitlines()[0].split()[1:]]
        user, nice, system, idle = jiffies[:4]
        return user + nice, system, idle, sum(jiffies[:8])

    def _net(self) -> tuple[int, int, int, int] | None:
        text = self._read("net", "dev")
        if not text:
            return None
        totals = [0, 0, 0, 0]
        for line in text.splitlines()[2:]:
            name, _, rest = line.partition(":")
            if name.strip() == "lo" or not rest:
                continue
            cols = [int(x) for x in rest.split()]
            for i, col in enumerate((0, 8, 1, 9)):
                totals[i] += cols[col]
        return totals[0], totals[1], totals[2], totals[3]

    def _proc_cpu(self) -> float | None:
        if self.pid is None:
            return None
        fields = stat_fields(self.pid, self.proc)
        if not fields:
            return None
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime + stime

    def _proc_rss(self) -> float | None:
        text = self._read(str(self.pid), "statm")
        return float(text.split()[1]) * _PAGE_SIZE if text else None


def _rates(before: _Counters, after: _Counters) -> dict[str, float]:
    seconds = after.at - before.at
    if seconds <= 0:
        return {}
    rates: dict[str, float] = {}
    if before.cpu and after.cpu and after.cpu[3] > before.cpu[3]:
        total = after.cpu[3] - before.cpu[3]
        for name, i in (("cpu_user", 0), ("cpu_system", 1), ("cpu_idle", 2)):
            rates[name] = round(100.0 * (after.cpu[i] - before.cpu[i]) / total, 2)
    if before.net and after.net:
        for name, i in (("bytes_in", 0), ("bytes_out", 1), ("pkts_in", 2), ("pkts_out", 3)):
            rates[name] = max(0.0, (after.net[i] - before.net[i]) / seconds)
    if before.requests is not None and after.requests is not None:
        # a restarted nginx resets its counter: count from zero rather than go negative
        delta = after.requests - before.requests
        rates["http_requests_per_min"] = (delta if delta >= 0 else after.requests) / seconds * 60
    if before.proc_cpu is not None and after.proc_cpu is not None:
        rates["proc_cpu_percent"] = round(100.0 * (after.proc_cpu - before.proc_cpu) / seconds, 2)
    return rates


async def publish_sample(bus: Bus, sampler: Sampler, *, node: str, account: str) -> bool:
    """Take one sample (off the loop: it reads files and HTTP) and publish it as a MetricEvent.

    Metrics are best effort: a sample that cannot be published is logged and dropped, never
    retried, so a broker outage costs the samples of its duration and nothing else.
    """
    samples = await asyncio.to_thread(sampler.sample)
    event = wire.MetricEvent(node=node, account=account, samples=samples, at=time.time())
    try:
        await bus.publish(topology.EVENTS.name, topology.metric_key(node), wire.encode(event))
    except BusError as exc:
        logger.warning("metrics.dropped", node=node, error=str(exc))
        return False
    return True
