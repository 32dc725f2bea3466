"""Garbage published into ``herk.requests`` amid real work: each piece is dead-lettered with its
reason, the herk nodes keep running, and every real job still ends, once."""

from __future__ import annotations

from pathlib import Path

import orjson

from megam import topology, wire
from megam.bus import Delivery
from megam.bus.amqp import AmqpBus
from tests.faults.faultkit import HerkProcesses, Recorder, new_request, runs_of, submit


def garbage() -> dict[bytes, str]:
    """Body → the reason herk must give."""
    good = orjson.loads(wire.encode(new_request("fault.quick", 99_999)))
    return {
        b'{"v": 1, "job_id": "RIP1", "type": ': "invalid JSON",
        orjson.dumps({**good, "type": "cloud.teleport"}): "unknown job type 'cloud.teleport'",
        orjson.dumps({**good, "v": 2}): "unsupported schema version 2",
        orjson.dumps({**good, "params": {"blob": "x" * 10_000_000}}): "message too large",
        b"\x00\xff not even text": "invalid JSON",
    }


async def test_garbage_is_dead_lettered_and_real_jobs_still_end_once(
    broker: AmqpBus, recorder: Recorder, herk_nodes: HerkProcesses, runs: Path
) -> None:
    herk_nodes.start("sorter-1", workers=2)
    herk_nodes.start("sorter-2", workers=2)
    dead: list[Delivery] = []

    async def keep(delivery: Delivery) -> None:
        dead.append(delivery)
        await delivery.ack()

    await broker.consume(topology.HERK_REQUESTS_DEAD.name, keep, prefetch=10)
    pieces = garbage()
    first = await submit(broker, (new_request("fault.quick_once", n) for n in range(20)))
    for body in pieces:
        await broker.publish(topology.REQUESTS.name, "job.fault.quick", body)
    then = await submit(broker, (new_request("fault.quick", n) for n in range(20, 40)))

    jobs = first + then
    await recorder.all_ended([r.job_id for r in jobs], timeout=90)
    await recorder.until(lambda: len(dead) >= len(pieces), "every piece dead-lettered")

    assert herk_nodes.alive("sorter-1") and herk_nodes.alive("sorter-2")
    for request in jobs:
        assert recorder.state(request.job_id) == "succeeded", request.job_id
        assert runs_of(runs, request.job_id) == 1, request.job_id
    assert {d.body: d.headers[wire.REASON_HEADER] for d in dead}.keys() == pieces.keys()
    for letter in dead:
        assert pieces[letter.body] in letter.headers[wire.REASON_HEADER]
    assert len(dead) == len(pieces), [(d.body[:20], d.headers, d.redelivered) for d in dead]
    assert recorder.state("RIP1") is None, "nothing recorded for a body that names no job"
