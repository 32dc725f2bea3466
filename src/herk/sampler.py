"""Samples the local cloud's nodes on this herk host and publishes their metrics.

A local node is a process on this host (``herk.provision.local``): its home holds ``run/pid`` and
``run/port``, and it serves an nginx-style ``/nginx_status``. Every ``interval`` seconds each live
node gets a :class:`~megam.sampling.Sampler` sample (host figures, the node process's CPU and
memory, its HTTP request rate) as a ``MetricEvent``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from megam import log
from megam.bus import Bus
from megam.sampling import Sampler, publish_sample

logger = log.get("herk.sampler")


class LocalNodeSampler:
    def __init__(self, nodes_dir: Path, bus: Bus, interval: float) -> None:
        self.nodes_dir = nodes_dir
        self.bus = bus
        self.interval = interval
        self._samplers: dict[Path, tuple[int, Sampler]] = {}

    async def run(self) -> None:
        while True:
            await self.sample_once()
            await asyncio.sleep(self.interval)

    async def sample_once(self) -> int:
        """Sample every live local node once; returns how many were published."""
        published = 0
        live = await asyncio.to_thread(self._live_nodes)
        for home, (pid, port) in live.items():
            known = self._samplers.get(home)
            if known is None or known[0] != pid:  # a restarted node starts its counters anew
                known = (
                    pid,
                    Sampler(pid=pid, nginx_status_url=f"http://127.0.0.1:{port}/nginx_status"),
                )
                self._samplers[home] = known
            account, node = home.parent.name, home.name
            published += await publish_sample(self.bus, known[1], node=node, account=account)
        for gone in set(self._samplers) - set(live):
            del self._samplers[gone]
        return published

    def _live_nodes(self) -> dict[Path, tuple[int, int]]:
        live: dict[Path, tuple[int, int]] = {}
        for home in self.nodes_dir.glob("*/*"):
            pid, port = _read_int(home / "run" / "pid"), _read_int(home / "run" / "port")
            if pid is not None and port is not None and Path(f"/proc/{pid}").exists():
                live[home] = (pid, port)
        return live


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
