"""A job's worker actor killed mid-job (an exception thrown into its thread): the master records
the job ``interrupted``, kills what the job left running, replaces the worker and carries on."""

from __future__ import annotations

import ctypes
import sys
import threading
from pathlib import Path

from cryptography.fernet import Fernet

from herk.node import HerkNode
from herk.provision.local import alive
from megam.bus.amqp import AmqpBus
from megam.config import Settings
from megam.secrets import Sealer
from tests.faults.faultkit import Recorder, new_request, runs_of, submit


class WorkerKilled(Exception):
    """Thrown into a worker actor's thread: to pykka, an actor that crashed."""


def kill_worker_running(job_id: str) -> bool:
    """Throw WorkerKilled into the thread whose worker actor runs ``job_id``."""
    for ident, frame in sys._current_frames().items():
        while frame is not None:
            job = frame.f_locals.get("job") if frame.f_code.co_name == "run" else None
            if job is not None and getattr(job, "job_id", None) == job_id:
                thrown = ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(ident), ctypes.py_object(WorkerKilled)
                )
                return thrown == 1
            frame = frame.f_back
    return False


def settings(tmp_path: Path, actors: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        amqp_url=None,
        store_url="sqlite://",
        uid_url=None,
        gateway_port=0,
        uid_port=0,
        herk_metrics_port=0,
        workers=3,
        herk_name="worker-fault",
        actors_dir=actors,
        secret_key_file=tmp_path / "secret.key",
        log_level="info",
        datacenter_id=0,
        worker_id=None,
    )


async def test_a_killed_worker_is_replaced_and_its_job_recorded(
    amqp_url: str, broker: AmqpBus, recorder: Recorder, actors: Path, runs: Path, tmp_path: Path
) -> None:
    bus = AmqpBus(amqp_url, publish_timeout=30)
    await bus.connect()
    node = HerkNode(settings(tmp_path, actors), bus, Sealer(Fernet.generate_key()))
    await node.start()
    try:
        requests = await submit(
            broker,
            (new_request("fault.once" if n % 3 == 0 else "fault.safe", n) for n in range(12)),
        )
        victim = requests[0]  # not idempotent: it must not run again either
        await recorder.until(lambda: runs_of(runs, victim.job_id) == 1, "the victim running")
        assert node.master is not None
        flight = node.master.flights[victim.job_id]
        group = flight.control.pgid
        assert group is not None and kill_worker_running(victim.job_id)

        await recorder.all_ended([r.job_id for r in requests], timeout=90)

        [last] = [e for e in recorder.statuses[victim.job_id] if e.state.terminal]
        assert last.state == "interrupted"
        assert last.reason == "worker crashed: WorkerKilled: "
        assert not alive(group), "the job's process was killed with its worker"
        for request in requests:
            assert runs_of(runs, request.job_id) == 1, request.job_id
            if request is not victim:
                assert recorder.state(request.job_id) == "succeeded", request.job_id
        assert node.pool is not None and node.pool.replacements == 1
        assert node.heartbeat().workers == 3
        assert sum(t.name.startswith("JobWorker") for t in threading.enumerate()) >= 3
    finally:
        await node.stop(grace=5)
        await bus.close()
