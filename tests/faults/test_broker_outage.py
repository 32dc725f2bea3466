"""A 60 s broker outage in the middle of a ``knife.create``: the job runs on, its log lines wait
in herk's outbox, and once the broker is back it ends ``succeeded``, exactly once, with every line.
And a node stopped while the broker is away keeps what it could not deliver, and delivers it when
it starts again.

A real ``python -m herk`` node reaches the real RabbitMQ through a TCP proxy the test takes away
(every connection cut, new ones refused) and gives back; the shared broker itself is untouched.
The knife is the fake one (tests/fakes), made slow: a line a second. The recorder plays the
gateway on a connection of its own; its rule for a node that stops beating is held off beyond the
outage (``silence_floor``), since what a partition does to the reconciler is not this test's
subject: here only herk's own report is judged.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from megam import topology, wire
from megam.bus.amqp import AmqpBus
from megam.secrets import Sealer, load_or_create_key
from tests.faults.faultkit import (
    REPO,
    HerkProcesses,
    Recorder,
    herk_processes,
    new_request,
    runs_of,
    submit,
)
from tests.faults.tcp_proxy import TcpProxy

OUTAGE_SECONDS = float(os.environ.get("MEGAM_TEST_OUTAGE_SECONDS") or 60)
"""60 s in CI; ``MEGAM_TEST_OUTAGE_SECONDS=300`` for the 5-minute outage of issue 11."""
PROGRESS_LINES = 40
"""One a second: the knife starts before the outage and finishes during it."""
PARAMS = {
    "cloud": {
        "cctype": "ec2",
        "spec": {"groups": "megam", "image": "ami-0abc1234", "flavor": "t1.micro"},
        "access": {"ssh_key": "megam_ec2", "ssh_user": "ubuntu", "region": "ap-southeast-1"},
    },
    "run_list": ["role[rails]"],
}


@pytest.fixture
async def proxy(amqp_url: str) -> AsyncIterator[TcpProxy]:
    relay = await TcpProxy.start(amqp_url)
    yield relay
    await relay.close()


@pytest.fixture
def proxied_nodes(proxy: TcpProxy, actors: Path, tmp_path: Path) -> HerkProcesses:
    shutil.copy(REPO / "actors" / "knife.create.toml", actors / "knife.create.toml")
    with herk_processes(proxy.url, actors, tmp_path / "data") as nodes:
        yield nodes  # type: ignore[misc]


def knife_runs(argv_log: Path) -> list[list[str]]:
    if not argv_log.exists():
        return []
    return [json.loads(line)["argv"] for line in argv_log.read_text().splitlines()]


async def test_a_knife_create_running_across_a_60_s_outage_succeeds_exactly_once(
    broker: AmqpBus, proxy: TcpProxy, proxied_nodes: HerkProcesses, tmp_path: Path
) -> None:
    recorder = await Recorder(silence_floor=10 * OUTAGE_SECONDS).attach(broker)
    data_dir, argv_log = tmp_path / "data", tmp_path / "argv.jsonl"
    data_dir.mkdir(parents=True, exist_ok=True)
    sealer = Sealer(load_or_create_key(data_dir / "secret.key"))  # the node's own key
    proxied_nodes.start(
        "through-proxy",
        heartbeat=1.0,
        extra_env={
            "PATH": f"{REPO / 'tests' / 'fakes'}:/usr/bin:/bin",
            "MEGAM_HERK_PASSENV": "MEGAM_FAKE_*",
            "MEGAM_FAKE_ARGV_LOG": str(argv_log),
            "MEGAM_FAKE_LINES": str(PROGRESS_LINES),
            "MEGAM_FAKE_LINE_SECONDS": "1",
        },
    )
    request = wire.JobRequest(
        job_id=f"RIP{int(time.time() * 1000) % 10**12}",
        type="knife.create",
        node="outage1.megam.co",
        account="ACT1001",
        correlation_id="outage",
        params=PARAMS,
        sealed=sealer.seal({"aws_access_key_id": "AKIA0", "aws_secret_access_key": "s3cr3t"}),
        created_at=time.time(),
    )
    try:
        await broker.publish(
            topology.REQUESTS.name,
            topology.request_key(request.type),
            wire.encode(request),
            message_id=request.job_id,
        )
        job = request.job_id

        def printing() -> bool:
            return any("progress line 2" in line.text for line in recorder.logs.get(job, []))

        await recorder.until(printing, "the knife printing its progress", timeout=60)
        await proxy.outage()
        await asyncio.sleep(OUTAGE_SECONDS)
        assert recorder.state(job) is None, "nothing reached the broker during the outage"
        proxy.heal()

        await recorder.all_ended([job], timeout=120)
        endings = [e for e in recorder.statuses[job] if e.state.terminal]
        assert [(e.state, e.reason) for e in endings] == [("succeeded", "")]
        assert len(knife_runs(argv_log)) == 1, "one server created"
        assert proxied_nodes.alive("through-proxy")
        texts = [line.text for line in sorted(recorder.logs[job], key=lambda line: line.seq)]
        assert [n for n in range(1, PROGRESS_LINES + 1) if f"progress line {n}" not in texts] == []
        assert texts[-1] == "succeeded: exit code 0"
        seqs = sorted({line.seq for line in recorder.logs[job]})
        assert seqs == list(range(1, len(seqs) + 1)), "no line lost"
        assert proxied_nodes.logged("through-proxy", "job.bus_lost") == []
    finally:
        await recorder.detach()


async def test_a_node_stopped_during_an_outage_delivers_the_outcome_at_its_next_start(
    broker: AmqpBus,
    proxy: TcpProxy,
    proxied_nodes: HerkProcesses,
    runs: Path,
    tmp_path: Path,
) -> None:
    recorder = await Recorder(silence_floor=10 * OUTAGE_SECONDS).attach(broker)
    settings = {"MEGAM_HERK_STOP_GRACE": "1"}
    proxied_nodes.start("stops-while-away", heartbeat=1.0, extra_env=settings)
    [request] = await submit(broker, [new_request("fault.once", 1)])  # 1.5 s, not idempotent
    job = request.job_id
    try:
        await recorder.until(lambda: runs_of(runs, job) == 1, "the job starting", timeout=60)
        await proxy.outage()
        await asyncio.sleep(5)  # the job ends meanwhile; its outcome cannot reach the broker
        assert proxied_nodes.terminate("stops-while-away") == 0
        kept = list((tmp_path / "data" / "herk" / "stops-while-away" / "outbox").glob("*.spill"))
        assert kept, "the undelivered events are kept in the node's data dir"
        assert recorder.state(job) is None

        proxy.heal()
        proxied_nodes.start("stops-while-away", heartbeat=1.0, extra_env=settings)
        await recorder.all_ended([job], timeout=60)
        endings = [e for e in recorder.statuses[job] if e.state.terminal]
        assert [(e.state, e.herk) for e in endings] == [("succeeded", "stops-while-away")]
        assert runs_of(runs, job) == 1
    finally:
        await recorder.detach()
