"""The Celery side of bench/dispatch.py: the same two jobs, on Celery's defaults + rpc results."""

from __future__ import annotations

import os
import subprocess

from celery import Celery

app = Celery(
    "megam_bench",
    broker=os.environ.get("BENCH_AMQP", "amqp://guest:guest@127.0.0.1//"),
    backend="rpc://",
)
app.conf.update(
    task_default_queue="bench.celery",
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop() -> int:
    return 0


@app.task(name="bench.true")
def run_true() -> int:
    return subprocess.run(["/bin/true"], check=False).returncode
