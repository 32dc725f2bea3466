"""End-to-end dispatch: publish a job, run it on a worker, consume its status event.

Three systems in the same run, on the same RabbitMQ, each worker in its own process:

* raw   — aio-pika at its simplest: publish with confirm → consume → publish a status event with
          confirm → ack; the driver consumes the status event. The floor any design pays.
* herk  — ``megam herk`` (master + pykka worker actors): a ``JobRequest`` in, its terminal
          ``StatusEvent`` consumed from ``gateway.events`` (the driver plays the gateway).
* celery — Celery 5 with the rpc result backend, its threads pool and its default prefork
          pool (as many threads / processes as herk has workers), defaults otherwise.
* spawn  — the limit for jobs that run a process: a bare loop spawning ``/bin/true`` on as many
          threads as herk has workers, with no broker at all.

Besides each system's line it prints the ratios ``herk/raw``, ``herk/celery`` (no-op jobs),
``true/celery`` (herk's ``/bin/true`` rate over the faster Celery pool's) and ``true/spawn``.

Throughput: N jobs with at most ``--window`` in flight. Latency: per job under that load, and
unloaded (one job at a time). Run: ``.venv/bin/python -m bench.dispatch --jobs 20000``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import orjson
import uvloop

from bench._common import free_port, private_vhost, summary
from megam import topology, wire

ROOT = Path(__file__).resolve().parents[1]
MEGAM = str(Path(sys.executable).with_name("megam"))


class Result:
    def __init__(
        self, name: str, jobs: int, seconds: float, latencies: list[float], unloaded: list[float]
    ) -> None:
        self.name, self.jobs, self.seconds = name, jobs, seconds
        self.latencies, self.unloaded = latencies, unloaded

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds

    def line(self) -> str:
        return (
            f"{self.name:14} {self.rate:8.0f} jobs/s   loaded: {summary(self.latencies)}   "
            f"unloaded: {summary(self.unloaded)}"
        )


# -- the raw aio-pika round trip -------------------------------------------------------------

RAW_REQUESTS, RAW_EVENTS = "bench.raw.requests", "bench.raw.events"


async def raw_worker(url: str, prefetch: int) -> None:
    connection = await aio_pika.connect_robust(url)
    consume = await connection.channel()
    await consume.set_qos(prefetch_count=prefetch)
    publish = await connection.channel(publisher_confirms=True)
    queue = await consume.declare_queue(
        RAW_REQUESTS, durable=True, arguments={"x-queue-type": "quorum"}
    )

    async def handle(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        job = orjson.loads(message.body)
        event = orjson.dumps({"job_id": job["job_id"], "state": "succeeded"})
        await publish.default_exchange.publish(
            aio_pika.Message(event, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=RAW_EVENTS,
        )
        await message.ack()

    await queue.consume(handle)
    await asyncio.Future()


class Driver:
    """Publishes jobs with a bounded window and matches each to its status event."""

    def __init__(self, window: int) -> None:
        self.window = asyncio.Semaphore(window)
        self.started: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Future[None]] = {}
        self.latencies: list[float] = []

    def finished(self, job_id: str) -> None:
        started = self.started.pop(job_id, None)
        if started is None:
            return  # a duplicate or a running event
        self.latencies.append(time.perf_counter() - started)
        self.window.release()
        waiter = self.waiters.pop(job_id, None)
        if waiter and not waiter.done():
            waiter.set_result(None)

    async def run(self, jobs: int, publish: Callable[[str], Awaitable[None]], prefix: str) -> float:
        self.latencies = []
        loop = asyncio.get_running_loop()
        done = [loop.create_future() for _ in range(jobs)]
        began = time.perf_counter()
        for i in range(jobs):
            job_id = f"{prefix}{i}"
            await self.window.acquire()
            self.waiters[job_id] = done[i]
            self.started[job_id] = time.perf_counter()
            await publish(job_id)
        await asyncio.gather(*done)
        return time.perf_counter() - began

    async def unloaded(
        self, jobs: int, publish: Callable[[str], Awaitable[None]], prefix: str
    ) -> list[float]:
        samples: list[float] = []
        for i in range(jobs):
            await self.run(1, publish, f"{prefix}{i}x")
            samples.extend(self.latencies)
        return samples


async def bench_raw(url: str, jobs: int, window: int, unloaded: int) -> Result:
    worker = subprocess.Popen(
        [sys.executable, "-m", "bench.dispatch", "--raw-worker", url, "--window", str(window)],
        cwd=ROOT,
    )
    try:
        connection = await aio_pika.connect_robust(url)
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(
            RAW_REQUESTS, durable=True, arguments={"x-queue-type": "quorum"}
        )
        events = await channel.declare_queue(
            RAW_EVENTS, durable=True, arguments={"x-queue-type": "quorum"}
        )
        driver = Driver(window)

        async def on_event(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            driver.finished(orjson.loads(message.body)["job_id"])
            await message.ack()

        consumer_channel = await connection.channel()
        await consumer_channel.set_qos(prefetch_count=window * 2)
        await (await consumer_channel.get_queue(RAW_EVENTS)).consume(on_event)
        del events

        async def publish(job_id: str) -> None:
            body = orjson.dumps({"job_id": job_id, "type": "noop"})
            await channel.default_exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=RAW_REQUESTS,
            )

        await driver.run(min(200, jobs), _windowed(publish, window), "warm")
        seconds = await driver.run(jobs, _windowed(publish, window), "raw")
        loaded = driver.latencies
        quiet = await driver.unloaded(unloaded, publish, "rawq")
        await connection.close()
        return Result("raw aio-pika", jobs, seconds, loaded, quiet)
    finally:
        worker.terminate()
        worker.wait(10)


def _windowed(
    publish: Callable[[str], Awaitable[None]], window: int
) -> Callable[[str], Awaitable[None]]:
    """Pipeline publishes: confirms are awaited concurrently, as a real producer would."""
    pending: set[asyncio.Task[None]] = set()

    async def start(job_id: str) -> None:
        task = asyncio.create_task(publish(job_id))
        pending.add(task)
        task.add_done_callback(pending.discard)
        if len(pending) >= window:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)

    return start


# -- herk ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def herk_process(url: str, workers: int, tmp: Path) -> AsyncIterator[None]:
    """``megam herk`` in its own process; yields once it consumes (its ``/healthz`` says ok)."""
    port = free_port()
    env = {
        **os.environ,
        "MEGAM_AMQP_URL": url,
        "MEGAM_DATA_DIR": str(tmp),
        "MEGAM_HERK_METRICS_PORT": str(port),
        "MEGAM_HERK_METRICS_HOST": "127.0.0.1",
        "MEGAM_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen(
        [MEGAM, "herk", "--workers", str(workers), "--name", "bench-herk"], env=env
    )
    try:
        await _healthy(f"http://127.0.0.1:{port}/healthz", proc)
        yield
    finally:
        proc.terminate()
        proc.wait(60)


HERK_START_SECONDS = 60.0


async def _healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + HERK_START_SECONDS
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"herk exited with status {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"herk did not become healthy within {HERK_START_SECONDS:g} s")


async def bench_herk(
    url: str, job_type: str, jobs: int, window: int, unloaded: int, workers: int, tmp: Path
) -> Result:
    driver = Driver(window)

    async def on_event(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        if message.routing_key and message.routing_key.startswith("status."):
            event = wire.decode(message.body, wire.StatusEvent)
            if event.state.terminal:
                driver.finished(event.job_id)
        await message.ack()

    async with herk_process(url, workers, tmp):
        connection = await aio_pika.connect_robust(url)
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.REQUESTS.name)
        # The driver plays the gateway: it consumes gateway.events, which herk declared.
        consumer_channel = await connection.channel()
        await consumer_channel.set_qos(prefetch_count=window * 2)
        events = await consumer_channel.get_queue(topology.GATEWAY_EVENTS.name)
        await events.consume(on_event)
        key = topology.request_key(job_type)
        counter = iter(range(10**9))

        async def publish(job_label: str) -> None:
            job_id = f"RIP{next(counter) + 1}"
            driver.started[job_id] = driver.started.pop(job_label)
            driver.waiters[job_id] = driver.waiters.pop(job_label)
            request = wire.JobRequest(
                job_id=job_id,
                type=job_type,
                node="bench1.megam.local",
                account="ACT1",
                correlation_id=job_label,
                created_at=time.time(),
            )
            await exchange.publish(
                aio_pika.Message(
                    wire.encode(request),
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=job_id,
                ),
                routing_key=key,
            )

        await driver.run(min(200, jobs), _windowed(publish, window), "warm")
        seconds = await driver.run(jobs, _windowed(publish, window), "herk")
        loaded = driver.latencies
        quiet = await driver.unloaded(unloaded, publish, "herkq")
        await connection.close()
    return Result(f"herk {job_type}", jobs, seconds, loaded, quiet)


# -- celery ----------------------------------------------------------------------------------


@contextlib.contextmanager
def celery_worker(url: str, workers: int, pool: str) -> Iterator[None]:
    env = {**os.environ, "BENCH_AMQP": url}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench.celery_tasks",
            "worker",
            "-P",
            pool,
            "-c",
            str(workers),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "warning",
            "-Q",
            "bench.celery",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        worker.terminate()
        worker.wait(30)


def bench_celery(task: str, jobs: int, window: int, unloaded: int) -> Result:
    from bench.celery_tasks import app

    signature = app.signature(task)
    signature.apply_async().get(timeout=60)  # the worker is up
    for _ in range(min(200, jobs)):
        signature.apply_async().get(timeout=60)
    latencies: list[float] = []
    began = time.perf_counter()
    inflight: collections.deque[tuple[float, Any]] = collections.deque()
    for _ in range(jobs):
        inflight.append((time.perf_counter(), signature.apply_async()))
        if len(inflight) >= window:
            started, result = inflight.popleft()
            result.get(timeout=120)
            latencies.append(time.perf_counter() - started)
    for started, result in inflight:
        result.get(timeout=120)
        latencies.append(time.perf_counter() - started)
    seconds = time.perf_counter() - began
    quiet = []
    for _ in range(unloaded):
        started = time.perf_counter()
        signature.apply_async().get(timeout=60)
        quiet.append(time.perf_counter() - started)
    return Result(f"celery {task}", jobs, seconds, latencies, quiet)


# -- the bare spawn loop ---------------------------------------------------------------------


def bench_spawn(jobs: int, threads: int) -> Result:
    """``/bin/true`` as fast as this machine spawns it from Python threads: no bus, no events."""
    from concurrent.futures import ThreadPoolExecutor

    def one(_: int) -> float:
        started = time.perf_counter()
        subprocess.run(["/bin/true"], check=False)
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        latencies = list(pool.map(one, range(jobs)))
    seconds = time.perf_counter() - started
    unloaded = [one(0) for _ in range(min(jobs, 300))]
    return Result("spawn true", jobs, seconds, latencies, unloaded)


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--window", type=int, default=256, help="jobs in flight at most")
    parser.add_argument("--unloaded", type=int, default=300, help="one-at-a-time samples")
    parser.add_argument("--only", default="raw,herk,celery,spawn")
    parser.add_argument("--raw-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_worker:
        uvloop.run(raw_worker(args.raw_worker, args.window))
        return
    chosen = set(args.only.split(","))
    results: dict[str, Result] = {}
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"megam-bench-{os.getpid()}"
    print(
        f"N={args.jobs} jobs, {args.workers} workers, window {args.window}, {os.cpu_count()} cores",
        flush=True,
    )
    if "raw" in chosen:
        with private_vhost() as url:
            results["raw"] = uvloop.run(bench_raw(url, args.jobs, args.window, args.unloaded))
            print(results["raw"].line(), flush=True)
    if "herk" in chosen:
        for job_type in ("noop", "shell.true"):
            with private_vhost() as url:
                results[job_type] = uvloop.run(
                    bench_herk(
                        url, job_type, args.jobs, args.window, args.unloaded, args.workers, tmp
                    )
                )
                print(results[job_type].line(), flush=True)
    if "celery" in chosen:
        with private_vhost() as url:
            os.environ["BENCH_AMQP"] = url  # read when bench.celery_tasks is imported
            for pool in ("threads", "prefork"):
                with celery_worker(url, args.workers, pool):
                    for task in ("bench.noop", "bench.true"):
                        label = f"celery-{pool}-{task.split('.')[1]}"
                        results[label] = bench_celery(task, args.jobs, args.window, args.unloaded)
                        results[label].name = f"celery {pool} {task.split('.')[1]}"
                        print(results[label].line(), flush=True)
    if "spawn" in chosen:
        results["spawn"] = bench_spawn(args.jobs, args.workers)
        print(results["spawn"].line(), flush=True)
    print_ratios(results)


def print_ratios(results: dict[str, Result]) -> None:
    celery = [results[k] for k in ("celery-threads-noop", "celery-prefork-noop") if k in results]
    celery_true = [
        results[k] for k in ("celery-threads-true", "celery-prefork-true") if k in results
    ]
    if "noop" in results:
        for other in celery:
            pool = other.name.split()[1]
            print(f"herk/celery {pool}: {results['noop'].rate / other.rate:.2f}")
    if "noop" in results and "raw" in results:
        print(f"herk/raw: {results['noop'].rate / results['raw'].rate:.2f}")
    if "noop" in results and celery:  # against the faster Celery pool
        best = max(celery, key=lambda result: result.rate)
        print(f"herk/celery: {results['noop'].rate / best.rate:.2f}")
    if "shell.true" in results and celery_true:
        best = max(celery_true, key=lambda result: result.rate)
        print(f"true/celery: {results['shell.true'].rate / best.rate:.2f}")
    if "shell.true" in results and "spawn" in results:
        print(f"true/spawn: {results['shell.true'].rate / results['spawn'].rate:.2f}")


if __name__ == "__main__":
    main()
