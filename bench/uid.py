"""uid: Megam's Snowflake generator and service against a PyPI peer and Twitter's figures.

* in-process — single ids from one thread, ``Generator.next_id`` (thread-safe) against
  snowflake-id 1.0.2's ``SnowflakeGenerator`` (not thread-safe; ``None`` when a millisecond is
  used up, so only real ids are counted), in alternating rounds of the same loop; medians.
* HTTP single — ``GET /id`` at 8 connections: requests/s and p99 (Twitter: ≥ 10k ids/s per
  process, 2 ms). HTTP batch — ``GET /ids?count=10000`` (the documented maximum) at 8
  connections: ids/s against the layout's limit of 4,096 ids per ms per worker (4,096,000/s).

The service runs as ``python -m uid`` in a process of its own (file lease in a temporary
directory). The load comes from ``wrk`` when installed (Debian: ``apt-get install -y wrk``), else
from an aiohttp client in this process (slower: Python then generates the load as well).

Run: ``.venv/bin/python -m bench.uid`` (about a minute). The last three lines are the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import snowflake as peer_snowflake

from bench._common import free_port, percentile
from megam.ids import MAX_BATCH, batch_from_answer
from megam.snowflake import LAYOUT_LIMIT_PER_SECOND, Generator, wall_ms

ROOT = Path(__file__).resolve().parents[1]
TWITTER_IDS_PER_S = 10_000
TWITTER_LATENCY_MS = 2.0
CONNECTIONS = 8


# -- in-process ------------------------------------------------------------------------------


def ids_per_second(issue: Callable[[], int | None], seconds: float) -> float:
    """Real ids (not ``None``) per second from calling ``issue`` in a tight loop."""
    issued = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(10_000):
            if issue() is not None:
                issued += 1
    return issued / (time.perf_counter() - start)


def locked(issue: Callable[[], int | None]) -> Callable[[], int | None]:
    """The peer made safe for threads, as a caller sharing it would have to."""
    lock = threading.Lock()

    def issue_locked() -> int | None:
        with lock:
            return issue()

    return issue_locked


def counting_clock() -> Callable[[], int]:
    """Milliseconds that advance every 2,048 readings, so the layout's 4,096 ids/ms never binds:
    what is left is each generator's own cost per id."""
    readings = itertools.count()
    start = wall_ms()
    return lambda: start + next(readings) // 2048


def peer(clock_ms: Callable[[], int] | None = None) -> Callable[[], int | None]:
    """A fresh peer generator reading ``clock_ms`` (None: the real clock)."""
    # It calls time() through its module's global on every id; point that at the clock wanted.
    peer_snowflake.snowflake.time = (
        time.time if clock_ms is None else (lambda: (clock_ms() + 0.5) / 1000)
    )
    return peer_snowflake.SnowflakeGenerator(1).__next__


Contenders = dict[str, Callable[[], Callable[[], int | None]]]


def medians(contenders: Contenders, rounds: int, seconds: float) -> dict[str, float]:
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):  # alternate, so that all see the same machine load
        for name, make in contenders.items():
            rates[name].append(ids_per_second(make(), seconds))
    for name, samples in rates.items():
        median = statistics.median(samples)
        shown = " ".join(f"{rate / 1e6:.2f}" for rate in samples)
        print(
            f"  {name:28} {median / 1e6:6.3f} M ids/s  {1e9 / median:5.0f} ns/id  "
            f"{median / LAYOUT_LIMIT_PER_SECOND:6.1%} of the limit  [{shown}]"
        )
    return {name: statistics.median(samples) for name, samples in rates.items()}


def in_process(rounds: int, seconds: float) -> tuple[float, float, float]:
    name = f"snowflake-id {peer_snowflake.__version__}"
    print(f"in-process, one thread, {rounds} alternating rounds of {seconds} s, medians:")
    real = medians(
        {
            name: peer,
            f"{name} + a lock": lambda: locked(peer()),
            "megam Generator (thread-safe)": lambda: Generator(1).next_id,
        },
        rounds,
        seconds,
    )
    print("in-process without the layout's ceiling (the same counting clock for both):")
    uncapped = medians(
        {
            name: lambda: peer(counting_clock()),
            "megam Generator (thread-safe)": lambda: Generator(1, clock=counting_clock()).next_id,
        },
        rounds,
        seconds,
    )
    ours = "megam Generator (thread-safe)"
    return real[name], real[ours], uncapped[ours] / uncapped[name]


# -- the service in its own process ----------------------------------------------------------


@contextmanager
def uid_service() -> Iterator[str]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="megam-bench-uid-") as data_dir:
        env = {**os.environ, "MEGAM_DATA_DIR": data_dir, "MEGAM_AMQP_URL": ""}
        process = subprocess.Popen(
            [sys.executable, "-m", "uid", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_until_listening(process)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(30)


def _wait_until_listening(process: subprocess.Popen[str]) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        if json.loads(line).get("event") == "uid.listening":
            # Keep draining its log so that the pipe never fills and stalls it.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return
    raise RuntimeError(f"the uid service exited with {process.wait()} before listening")


# -- load: wrk, or an aiohttp client ---------------------------------------------------------


class Load:
    def __init__(self, requests_per_s: float, p50_ms: float, p99_ms: float, tool: str) -> None:
        self.requests_per_s, self.p50_ms, self.p99_ms, self.tool = (
            requests_per_s,
            p50_ms,
            p99_ms,
            tool,
        )


def load(url: str, seconds: float) -> Load:
    if shutil.which("wrk"):
        return _wrk(url, seconds)
    return asyncio.run(_aiohttp_load(url, seconds))


def _wrk(url: str, seconds: float) -> Load:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw failed requests:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return Load(rate, _wrk_ms(out, "50%"), _wrk_ms(out, "99%"), "wrk -t1")


def _wrk_ms(out: str, quantile: str) -> float:
    value, unit = re.search(rf"{quantile}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def _aiohttp_load(url: str, seconds: float) -> Load:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(deadline: float) -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.get(url) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"{url} answered {resp.status}")
                latencies.append(time.perf_counter() - started)

        start = time.perf_counter()
        await asyncio.gather(*(worker(start + seconds) for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - start
    ms = [latency * 1000 for latency in latencies]
    return Load(len(ms) / elapsed, percentile(ms, 0.5), percentile(ms, 0.99), "aiohttp client")


async def check_batches(base: str, count: int, batches: int) -> None:
    """The bench counts ids from request rates: first make sure the answers hold what they say."""
    seen: set[int] = set()
    async with aiohttp.ClientSession() as session:
        for _ in range(batches):
            async with session.get(f"{base}/ids", params={"count": str(count)}) as resp:
                body = await resp.read()
            values = batch_from_answer(body, count)
            if json.loads(body)["ids_str"] != [str(value) for value in values]:
                raise RuntimeError("ids_str differs from ids")
            seen.update(values)
    if len(seen) != count * batches:
        raise RuntimeError("duplicate ids across batches")


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7, help="in-process rounds per generator")
    parser.add_argument("--round-seconds", type=float, default=0.5)
    parser.add_argument("--http-seconds", type=int, default=10)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")

    peer, ours, uncapped_ratio = in_process(args.rounds, args.round_seconds)

    with uid_service() as base:
        load(f"{base}/id?agent=warmup", 2)
        single = load(f"{base}/id?agent=bench", args.http_seconds)
        print(
            f"HTTP single id, {CONNECTIONS} connections, {args.http_seconds} s ({single.tool}): "
            f"{single.requests_per_s:,.0f} req/s, p50 {single.p50_ms:.2f} ms, "
            f"p99 {single.p99_ms:.2f} ms  (Twitter: {TWITTER_IDS_PER_S:,} ids/s, "
            f"{TWITTER_LATENCY_MS} ms: {single.requests_per_s / TWITTER_IDS_PER_S:.1f}x)"
        )
        asyncio.run(check_batches(base, MAX_BATCH, 20))
        batch = load(f"{base}/ids?count={MAX_BATCH}&agent=bench", args.http_seconds)
        batch_ids = batch.requests_per_s * MAX_BATCH
        print(
            f"HTTP batch of {MAX_BATCH:,}, {CONNECTIONS} connections, {args.http_seconds} s "
            f"({batch.tool}): {batch_ids / 1e6:.3f} M ids/s, p99 {batch.p99_ms:.2f} ms per batch "
            f"({batch_ids / LAYOUT_LIMIT_PER_SECOND:.1%} of the layout limit, "
            f"{batch_ids / TWITTER_IDS_PER_S:,.0f}x Twitter's 10k ids/s)"
        )

    print(f"inprocess/peer without the layout's ceiling: {uncapped_ratio:.2f}")
    print(f"inprocess/peer: {ours / peer:.2f}")
    print(f"batch/limit: {batch_ids / LAYOUT_LIMIT_PER_SECOND:.3f}")
    print(f"single_rps: {single.requests_per_s:.0f}")


if __name__ == "__main__":
    main()
