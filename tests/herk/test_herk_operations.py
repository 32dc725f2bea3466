"""What an operator sees and steers: heartbeats, drain and scale over the control exchange,
``/metrics`` and ``/healthz``."""

from __future__ import annotations

from pathlib import Path

import pytest
from herk_testkit import (
    EventLog,
    control,
    job_request,
    kill_quietly,
    release,
    sleeper_actor,
    started,
    submit,
    until,
)

import megam
from herk.main import health_app
from megam import topology
from megam.bus import Bus


@pytest.fixture
def actors(tmp_path: Path) -> Path:
    directory = tmp_path / "actors"
    sleeper_actor(directory, "test.sleep")
    return directory


class TestHeartbeat:
    async def test_tells_workers_busy_and_the_jobs_in_flight(
        self, bus: Bus, events: EventLog, start_herk, actors: Path, data_dir: Path
    ) -> None:
        herk = await start_herk(bus, actors_dir=actors, workers=3, heartbeat_seconds=0.1)
        request = await submit(bus, job_request("test.sleep"))
        pids = await started(events, data_dir, request.job_id)
        try:
            beat = await events.wait_until(
                lambda: next(
                    (b for b in reversed(events.heartbeats) if request.job_id in b.inflight), None
                ),
                "a heartbeat listing the running job",
            )
            assert (beat.herk, beat.workers, beat.busy) == (herk.name, 3, 1)
            assert beat.version == megam.__version__ and not beat.draining
            assert beat.started_at == herk.started_at
            assert beat.interval == 0.1
            [held] = beat.jobs  # held until its outcome: the broker would redeliver it
            assert (held.job_id, held.attempt, held.accepted) == (request.job_id, 1, False)
            assert held.since <= beat.at
        finally:
            kill_quietly(pids)


class TestDrain:
    async def test_stops_taking_work_and_lets_running_jobs_finish(
        self, bus: Bus, events: EventLog, start_herk, actors: Path, data_dir: Path
    ) -> None:
        herk = await start_herk(bus, actors_dir=actors)
        running_job = await submit(bus, job_request("test.sleep"))
        pids = await started(events, data_dir, running_job.job_id)
        try:
            await control(bus, "drain", herk=herk.name)
            await events.wait_until(
                lambda: any(b.draining for b in events.heartbeats if b.herk == herk.name),
                "a heartbeat saying the node drains",
            )
            waiting = await submit(bus, job_request("test.sleep"))
            release(data_dir, running_job.job_id)
            assert (await events.terminal(running_job.job_id)).state == "succeeded"
            assert events.status_of(waiting.job_id) == []
            assert await bus.queue_depth(topology.HERK_REQUESTS.name) == 1

            other = await start_herk(bus, actors_dir=actors, name="other")
            pids += await started(events, data_dir, waiting.job_id)
            release(data_dir, waiting.job_id)
            done = await events.terminal(waiting.job_id)
            assert done.state == "succeeded" and done.herk == other.name
        finally:
            kill_quietly(pids)


class TestScale:
    async def test_more_workers_run_more_jobs_at_once(
        self, bus: Bus, events: EventLog, start_herk, actors: Path, data_dir: Path
    ) -> None:
        herk = await start_herk(bus, actors_dir=actors, workers=1)
        await control(bus, "scale", herk=herk.name, workers=3)
        await until(lambda: herk.heartbeat().workers == 3, "the node to scale to 3 workers")
        jobs = [await submit(bus, job_request("test.sleep")) for _ in range(3)]
        pids: list[int] = []
        try:
            for job in jobs:  # all three run at the same time: none is released yet
                pids += await started(events, data_dir, job.job_id)
            assert herk.heartbeat().busy == 3

            await control(bus, "scale", herk=herk.name, workers=1)
            await until(lambda: herk.heartbeat().workers == 1, "the node to scale down to 1")
            for job in jobs:
                release(data_dir, job.job_id)
            for job in jobs:
                assert (await events.terminal(job.job_id)).state == "succeeded"
        finally:
            kill_quietly(pids)


class TestMetricsAndHealth:
    async def test_metrics_count_jobs_by_type_and_outcome(
        self, bus: Bus, events: EventLog, start_herk, aiohttp_client
    ) -> None:
        herk = await start_herk(bus)
        client = await aiohttp_client(health_app(herk))
        succeeded = 'megam_herk_jobs_total{outcome="succeeded",type="noop"}'
        waited = 'megam_herk_queue_wait_seconds_count{type="noop"}'
        ran = 'megam_herk_job_duration_seconds_count{type="noop"}'
        before = {series: await _sample(client, series) for series in (succeeded, waited, ran)}
        request = await submit(bus, job_request("noop"))
        assert (await events.terminal(request.job_id)).state == "succeeded"

        for series in (succeeded, waited, ran):
            assert await _sample(client, series) == before[series] + 1, series
        text = await (await client.get("/metrics")).text()
        for name in (
            "megam_herk_jobs_in_flight",
            "megam_herk_workers",
            "megam_herk_workers_busy",
            "megam_herk_worker_busy_seconds_total",
            "megam_herk_jobs_accepted_total",
            "megam_herk_accepts_unconfirmed_total",
            "megam_herk_redeliveries_total",
            "megam_herk_retries_total",
            "megam_herk_dead_letters_total",
            "megam_herk_worker_replacements_total",
            "megam_herk_cancels_read_total",
            "megam_herk_broker_reconnects_total",
        ):
            assert f"# TYPE {name} " in text, name

        health = await client.get("/healthz")
        assert health.status == 200
        body = await health.json()
        assert body["status"] == "ok" and body["herk"] == herk.name and body["workers"] == 2


async def _sample(client, series: str) -> float:
    text = await (await client.get("/metrics")).text()
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0
