"""What durability costs the embedded bus: publish and consume rates, in memory and journaled.

    .venv/bin/python -m bench.bus [--messages 5000] [--publishers 50]

For each bus (in memory; journaled with ``synchronous=NORMAL``; with ``FULL``) on a fresh temp
directory: confirmed publishes one at a time (each waits for its commit: the latency a lone
publisher sees), the same from ``--publishers`` concurrent tasks (group commit), then consuming
everything with prefetch 30 and a plain ack, then publishing and consuming at once, confirmed
acks (herk's ack on acceptance).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench._common import summary
from megam import topology
from megam.bus import Delivery
from megam.bus.embedded import EmbeddedBus

WORK = topology.Queue("bench.work", bindings=((topology.REQUESTS.name, "job.#"),))
BODY = b'{"v":1,"job_id":"RIP1","type":"noop","params":{}}' + b" " * 400


async def one_at_a_time(bus: EmbeddedBus, count: int) -> tuple[float, list[float]]:
    latencies = []
    started = time.perf_counter()
    for _ in range(count):
        before = time.perf_counter()
        await bus.publish("megam.requests", "job.noop", BODY)
        latencies.append(time.perf_counter() - before)
    return count / (time.perf_counter() - started), latencies


async def concurrently(bus: EmbeddedBus, count: int, publishers: int) -> float:
    async def publisher(share: int) -> None:
        for _ in range(share):
            await bus.publish("megam.requests", "job.noop", BODY)

    started = time.perf_counter()
    await asyncio.gather(*(publisher(count // publishers) for _ in range(publishers)))
    return (count // publishers * publishers) / (time.perf_counter() - started)


async def consume_all(bus: EmbeddedBus, count: int, *, confirmed: bool) -> float:
    done = asyncio.Event()
    seen = 0

    async def handler(delivery: Delivery) -> None:
        nonlocal seen
        await delivery.ack(confirmed=confirmed)
        seen += 1
        if seen == count:
            done.set()

    started = time.perf_counter()
    subscription = await bus.consume(WORK.name, handler, prefetch=30)
    await done.wait()
    await subscription.cancel()
    return count / (time.perf_counter() - started)


async def through(bus: EmbeddedBus, count: int, publishers: int) -> float:
    started = time.perf_counter()
    consumed = asyncio.create_task(consume_all(bus, count, confirmed=True))
    await concurrently(bus, count, publishers)
    await consumed
    return count / (time.perf_counter() - started)


async def measure(name: str, directory: Path | None, args: argparse.Namespace) -> None:
    sync = "FULL" if name.endswith("FULL") else "NORMAL"
    bus = EmbeddedBus(directory, synchronous=sync)  # type: ignore[arg-type]
    await bus.connect()
    await bus.declare(topology.EXCHANGES, (WORK,))
    try:
        rate, latencies = await one_at_a_time(bus, args.messages)
        print(f"{name:16} publish one at a time: {rate:8.0f} msg/s, {summary(latencies)}")
        await consume_all(bus, args.messages, confirmed=False)
        rate = await concurrently(bus, args.messages, args.publishers)
        print(f"{name:16} publish, {args.publishers} publishers: {rate:8.0f} msg/s")
        published = args.messages // args.publishers * args.publishers
        rate = await consume_all(bus, published, confirmed=False)
        print(f"{name:16} consume + plain ack:   {rate:8.0f} msg/s")
        rate = await through(bus, args.messages, args.publishers)
        print(f"{name:16} publish+consume+confirmed ack at once: {rate:8.0f} msg/s")
    finally:
        await bus.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--publishers", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        await measure("memory", None, args)
        await measure("journal NORMAL", Path(tmp) / "normal", args)
        await measure("journal FULL", Path(tmp) / "full", args)


if __name__ == "__main__":
    asyncio.run(main())
