"""RabbitMQ restarted (``rabbitmqctl stop_app`` / ``start_app``) during a load of 1,000 jobs: the
herk nodes reconnect by themselves, every job ends, none is lost, none that is not idempotent ran
twice.

It stops the broker every engineer's tests share, so it runs only when asked:
``MEGAM_TEST_RESTART_BROKER=1 .venv/bin/pytest tests/faults/test_broker_restart.py``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from megam.bus.amqp import AmqpBus
from tests.faults.faultkit import HerkProcesses, Recorder, new_request, runs_of, submit

pytestmark = pytest.mark.skipif(
    os.environ.get("MEGAM_TEST_RESTART_BROKER") != "1",
    reason="restarts the shared RabbitMQ; set MEGAM_TEST_RESTART_BROKER=1 to run it",
)
OUTAGE_SECONDS = 2.0


async def rabbitmqctl(*args: str) -> None:
    await asyncio.to_thread(
        subprocess.run, ["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120
    )


async def test_a_broker_restart_mid_load_loses_nothing_and_runs_nothing_unsafe_twice(
    broker: AmqpBus, recorder: Recorder, herk_nodes: HerkProcesses, runs: Path
) -> None:
    herk_nodes.start("steady-1", workers=4, heartbeat=0.5)
    herk_nodes.start("steady-2", workers=4, heartbeat=0.5)
    requests = [
        new_request("fault.brief_once" if n % 10 == 0 else "fault.brief", n) for n in range(1000)
    ]
    await submit(broker, requests)  # all confirmed before the outage: nothing to publish again
    job_ids = [r.job_id for r in requests]

    await recorder.until(lambda: len(job_ids) - len(recorder.pending(job_ids)) >= 150, "a start")
    await rabbitmqctl("stop_app")
    unfinished = len(recorder.pending(job_ids))
    await asyncio.sleep(OUTAGE_SECONDS)
    await rabbitmqctl("start_app")

    await recorder.all_ended(job_ids, timeout=300)
    assert unfinished > 0 and broker.reconnects >= 1, "the outage came in the middle of the load"
    assert herk_nodes.alive("steady-1") and herk_nodes.alive("steady-2")
    assert not recorder.interrupted_by_rule, "no herk node stopped beating for good"
    for request in requests:
        state, ran = recorder.state(request.job_id), runs_of(runs, request.job_id)
        if request.type == "fault.brief":
            assert (state, ran >= 1) == ("succeeded", True), request.job_id
        else:
            assert ran <= 1, f"{request.job_id} ran {ran} times"
            assert (state, ran) == ("succeeded", 1), request.job_id
