"""Metric roll-up benchmark: what folding samples into 5-minute and hourly points costs, against
storing those samples in the first place (the baseline, same store, same run).

Run by hand: ``.venv/bin/python -m bench.rollup [--nodes 50] [--metrics 16] [--hours 1]``.
Samples arrive every 10 s per node, as herk's sampler sends them (one MetricEvent per node and
tick); the SQLite store lives in a temporary directory. Reported: samples stored per second, the
roll-up pass over all of them (samples folded per second), their ratio, and a second pass with
nothing new (what the gateway pays every minute when the cluster is quiet).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from gateway import jobs
from gateway.store import Store, store_for_url
from gateway.store.records import Account, CloudTarget, Launch, Node
from megam import wire

TICK_SECONDS = 10.0
START = 472_000 * 3600.0  # an hour boundary, long enough ago to be all rolled-up history


async def run(nodes: int, metrics: int, hours: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        store = store_for_url(f"sqlite:///{Path(directory) / 'bench.db'}")
        await store.open()
        try:
            account = await _account_with_nodes(store, nodes)
            ticks = int(hours * 3600 / TICK_SECONDS)
            started = time.perf_counter()
            for tick in range(ticks):
                at = START + tick * TICK_SECONDS
                await asyncio.gather(
                    *(
                        store.add_metrics(
                            wire.MetricEvent(
                                node=f"n{n}.local",
                                account=account,
                                samples={f"m{m}": float(tick + m) for m in range(metrics)},
                                at=at,
                            )
                        )
                        for n in range(nodes)
                    )
                )
            stored = time.perf_counter() - started
            now = START + hours * 3600 + 60
            started = time.perf_counter()
            points = await store.roll_up(now)
            rolled = time.perf_counter() - started
            started = time.perf_counter()
            await store.roll_up(now)
            idle = time.perf_counter() - started
        finally:
            await store.close()
    samples = nodes * metrics * ticks
    return {
        "samples": samples,
        "points": points,
        "store_rate": samples / stored,
        "rollup_rate": samples / rolled,
        "rollup_seconds": rolled,
        "idle_pass_ms": idle * 1000,
    }


async def _account_with_nodes(store: Store, nodes: int) -> str:
    now = time.time()
    account = Account(
        id="ACT1", email="bench@example.com", api_key_encrypted="x", authority="user",
        created_at=now,
    )  # fmt: skip
    await store.add_account(account)
    cloud = CloudTarget(name="local", cctype="local", spec={}, access={})
    launches = []
    for n in range(nodes):
        job, outbox = jobs.new_job(
            job_id=f"RIP{n + 1}", account_id=account.id, node_id=f"NOD{n + 1}",
            node_name=f"n{n}.local", req_type="create", cloud=cloud, run_list=[], sealed=None,
            correlation_id="bench", now=now, lease=30,
        )  # fmt: skip
        node = Node(
            id=f"NOD{n + 1}", account_id=account.id, name=f"n{n}.local", node_type="APP",
            status="RUNNING", cloud=cloud, command={}, predefs={}, defns_encrypted=None,
            created_at=now, updated_at=now,
        )  # fmt: skip
        launches.append(Launch(node=node, job=job, outbox=outbox))
    await store.add_launches(launches)
    return account.id


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.rollup")
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--metrics", type=int, default=16)
    parser.add_argument("--hours", type=float, default=1.0)
    args = parser.parse_args()
    result = asyncio.run(run(args.nodes, args.metrics, args.hours))
    print(f"samples: {result['samples']:,} ({args.nodes} nodes, {args.metrics} metrics, 10 s)")
    print(f"stored: {result['store_rate']:,.0f} samples/s (the baseline)")
    print(
        f"rolled up: {result['rollup_rate']:,.0f} samples/s with {result['points']:,} point writes "
        f"({result['rollup_seconds']:.2f} s)"
    )
    print(f"rollup/store: {result['rollup_rate'] / result['store_rate']:.1f}")
    print(f"a pass with nothing new: {result['idle_pass_ms']:.2f} ms")


if __name__ == "__main__":
    main()
