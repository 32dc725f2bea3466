"""A uid worker in a process of its own, for tests that need real processes.

``python worker_process.py write-ids DIR COUNT OUT PEERS``: lease a worker id (file lease in
DIR), wait until PEERS processes hold a lease at the same time, write COUNT ids to OUT as native
64-bit integers, release the lease.

``python worker_process.py hold KIND LOCATION WORKER HORIZON_MS``: lease WORKER (or ``any``) with
a file (KIND=file, LOCATION=dir) or RabbitMQ (KIND=rabbitmq, LOCATION=URL) lease, persist a
horizon HORIZON_MS ahead of the clock, print ``{"worker_id": .., "horizon_ms": ..}`` and hold the
lease until killed.

``python worker_process.py peek KIND LOCATION WORKER``: lease WORKER, print
``{"worker_id": .., "previous_horizon_ms": ..}`` and hold it, without a horizon of its own, until
killed (a holder that dies before it could persist anything).
"""

from __future__ import annotations

import array
import asyncio
import faulthandler
import json
import sys
from pathlib import Path

from megam import log
from megam.snowflake import wall_ms
from uid.file_lease import FileLeaser
from uid.keeper import LeaseKeeper
from uid.lease import Leaser, LeaseUnavailable


async def write_ids(directory: str, count: int, out: str, peers: int) -> None:
    keeper = LeaseKeeper(FileLeaser(Path(directory)), datacenter_id=0)
    generator = await keeper.start()
    try:
        await all_holding(Path(directory), generator.worker_id, peers)
        # In a thread, so that the keeper keeps renewing the lease meanwhile.
        ids = await asyncio.to_thread(
            lambda: array.array("q", [generator.next_id() for _ in range(count)])
        )
    finally:
        await keeper.stop()
    Path(out).write_bytes(ids.tobytes())


async def all_holding(directory: Path, worker_id: int, peers: int) -> None:
    """A barrier: the test needs its processes to hold their leases at the same time."""
    (directory / f"holding-{worker_id}").touch()
    async with asyncio.timeout(60):
        while len(list(directory.glob("holding-*"))) < peers:
            await asyncio.sleep(0.01)


def leaser_for(kind: str, location: str) -> Leaser:
    if kind == "file":
        return FileLeaser(Path(location))
    from uid.amqp_lease import AmqpLeaser

    return AmqpLeaser(location)


async def hold(kind: str, location: str, worker: str, horizon_ms: int | None) -> None:
    leaser = leaser_for(kind, location)
    async with asyncio.timeout(10):  # a broker notices a killed predecessor a moment later
        while True:
            try:
                lease = await leaser.acquire(0, None if worker == "any" else int(worker))
                break
            except LeaseUnavailable:
                await asyncio.sleep(0.05)
    answer = {"worker_id": lease.worker_id, "previous_horizon_ms": lease.previous_horizon_ms}
    if horizon_ms is not None:
        answer["horizon_ms"] = wall_ms() + horizon_ms
        await lease.persist_horizon(answer["horizon_ms"])
    print(json.dumps(answer), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    log.configure("warning")  # logs to stderr; stdout carries the answer
    faulthandler.dump_traceback_later(50, exit=True)  # a stuck worker shows where, and ends
    command, *args = sys.argv[1:]
    if command == "write-ids":
        asyncio.run(write_ids(args[0], int(args[1]), args[2], int(args[3])))
    elif command == "hold":
        asyncio.run(hold(args[0], args[1], args[2], int(args[3])))
    else:
        asyncio.run(hold(args[0], args[1], args[2], None))
