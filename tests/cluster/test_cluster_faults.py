"""Real herk nodes on a 3-node RabbitMQ cluster: kill -9 the broker node that leads
``herk.requests`` in the middle of a burst. Every accepted job ends, none is stuck, none that is
not idempotent runs twice, every herk node lives on, and new jobs run afterwards."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from megam import topology
from megam.bus.amqp import AmqpBus
from tests.cluster.conftest import Cluster
from tests.faults.faultkit import (
    HerkProcesses,
    Recorder,
    herk_processes,
    new_request,
    open_broker,
    runs_of,
    submit,
    write_actors,
)

pytestmark = pytest.mark.timeout(600)

DOWN_SECONDS = 20.0
"""How long the killed node stays down: longer than every reconnect interval, and it then comes
back, as a crashed node does under its supervisor (claims it recorded are readable again)."""


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
async def broker(cluster_urls: str) -> AsyncIterator[AmqpBus]:
    async with open_broker(cluster_urls) as bus:
        yield bus


@pytest.fixture
async def recorder(broker: AmqpBus) -> AsyncIterator[Recorder]:
    instance = await Recorder(silence_floor=30.0).attach(broker)
    yield instance
    await instance.detach()


@pytest.fixture
def herk_nodes(cluster_urls: str, tmp_path: Path, runs: Path) -> Iterator[HerkProcesses]:
    actors = write_actors(tmp_path / "actors", runs)
    with herk_processes(cluster_urls, actors, tmp_path / "data") as nodes:
        yield nodes


def leader_of(cluster: Cluster, urls: str, queue: str) -> int:
    vhost = urls.split(",")[0].rsplit("/", 1)[1]
    listed = json.loads(
        cluster.ctl(cluster.running()[0], "list_queues", "-p", vhost, "name", "leader",
                    "--formatter", "json")
    )
    leader = next(q["leader"] for q in listed if q["name"] == queue)
    return int(leader.split("@")[0].rsplit("-", 1)[1])


async def test_killing_the_leader_of_herk_requests_mid_burst_loses_nothing(
    rabbit_cluster: Cluster, cluster_urls: str, broker: AmqpBus, recorder: Recorder,
    herk_nodes: HerkProcesses, runs: Path,
) -> None:
    herk_nodes.start("cluster-a", workers=4, heartbeat=0.5)
    herk_nodes.start("cluster-b", workers=4, heartbeat=0.5)
    requests = [
        new_request("fault.brief_once" if n % 5 == 0 else "fault.brief", n) for n in range(400)
    ]
    await submit(broker, requests)
    job_ids = [r.job_id for r in requests]
    await recorder.until(lambda: len(job_ids) - len(recorder.pending(job_ids)) >= 60, "a start")

    leader = leader_of(rabbit_cluster, cluster_urls, topology.HERK_REQUESTS.name)
    rabbit_cluster.kill(leader)
    unfinished = len(recorder.pending(job_ids))
    await asyncio.sleep(DOWN_SECONDS)
    assert leader_of(rabbit_cluster, cluster_urls, topology.HERK_REQUESTS.name) != leader
    rabbit_cluster.revive(leader)

    await recorder.all_ended(job_ids, timeout=300)
    assert unfinished > 0, "the kill came in the middle of the burst"
    assert herk_nodes.alive("cluster-a") and herk_nodes.alive("cluster-b")
    for request in requests:
        state, ran = recorder.state(request.job_id), runs_of(runs, request.job_id)
        if request.type == "fault.brief":
            assert (state, ran >= 1) == ("succeeded", True), request.job_id
        else:
            assert ran <= 1, f"{request.job_id} ran {ran} times"
            assert (state, ran) == ("succeeded", 1), request.job_id

    after = [new_request("fault.brief", 1000 + n) for n in range(20)]
    await submit(broker, after)
    await recorder.all_ended([r.job_id for r in after], timeout=120)
    assert all(recorder.state(r.job_id) == "succeeded" for r in after)
