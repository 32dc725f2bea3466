"""Delivery semantics: a request is acknowledged only once its outcome is recorded, so a herk node
that dies loses nothing; a job that is not idempotent is never run twice by accident; retries are
re-published attempts; the last failed attempt goes to the dead-letter queue."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from herk_testkit import (
    REPO,
    EventLog,
    QueueLog,
    job_request,
    kill_quietly,
    read_pids,
    release,
    sleeper_actor,
    started,
    started_again,
    submit,
    wait_dead,
    write_actor,
)

from megam import topology, wire
from megam.bus import Bus

FLAKY = Path(__file__).resolve().parent / "jobs" / "flaky.py"


@pytest.fixture
def actors(tmp_path: Path) -> Path:
    directory = tmp_path / "actors"
    sleeper_actor(directory, "test.sleep", idempotent=True)
    sleeper_actor(directory, "test.once", idempotent=False)
    for name, fail_times, attempts, backoff in (
        ("test.flaky", 1, 3, 0.05),
        ("test.hopeless", 9, 2, 0.05),
        ("test.patient", 1, 2, 1.0),
    ):
        write_actor(
            directory,
            name,
            f'description = "fails {fail_times} times"\nidempotent = true\ntimeout = 30\n'
            f'argv = ["{{python}}", "{FLAKY}", "--count", "{{data_dir}}/{{job_id}}.count", '
            f'"--fail-times", "{fail_times}"]\n'
            f"[retry]\nmax_attempts = {attempts}\nbackoff = {backoff}\n"
            f"backoff_max = {max(backoff, 0.1)}\n",
        )
    return directory


@pytest.fixture
def herk_process(amqp_url: str, actors: Path, data_dir: Path, tmp_path: Path) -> Iterator:
    """Start ``python -m herk`` (a separate herk node process) against the test's vhost."""
    processes: list[subprocess.Popen] = []

    def start(name: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "MEGAM_AMQP_URL": amqp_url,
            "MEGAM_ACTORS_DIR": str(actors),
            "MEGAM_DATA_DIR": str(data_dir),
            "MEGAM_SECRET_KEY_FILE": str(tmp_path / "secret.key"),
            "MEGAM_HERK_NAME": name,
            "MEGAM_HERK_METRICS_PORT": "0",
            "MEGAM_HERK_METRICS_HOST": "127.0.0.1",
            "MEGAM_WORKERS": "2",
            "MEGAM_HERK_HEARTBEAT_SECONDS": "0.2",
        }
        with open(tmp_path / f"{name}.log", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "herk"],
                env=env,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


class TestHerkNodeDiesMidJob:
    async def test_sigkill_loses_nothing_and_runs_nothing_unsafe_twice(
        self, rabbit: Bus, herk_process, start_herk, actors: Path, data_dir: Path
    ) -> None:
        events = await EventLog().attach(rabbit)
        victim = herk_process("victim")
        safe = await submit(rabbit, job_request("test.sleep"))
        unsafe = await submit(rabbit, job_request("test.once"))
        orphans = []
        try:
            orphans += await started(events, data_dir, safe.job_id)
            orphans += await started(events, data_dir, unsafe.job_id)
            beat = await events.wait_until(
                lambda: next((b for b in events.heartbeats if any(j.accepted for j in b.jobs)), 0),
                "a heartbeat of the victim listing an accepted job",
            )
            held = {job.job_id: (job.attempt, job.accepted) for job in beat.jobs}
            # Not idempotent: acknowledged on acceptance, before it started; the other is not.
            assert held == {unsafe.job_id: (1, True), safe.job_id: (1, False)}

            victim.send_signal(signal.SIGKILL)  # no goodbye
            victim.wait(timeout=30)
            survivor = await start_herk(rabbit, actors_dir=actors, name="survivor")

            # The safe job is redelivered and run again; the accepted one is not redelivered.
            await events.wait_until(
                lambda: [e.herk for e in events.status_of(safe.job_id)] == ["victim", "survivor"],
                "the safe job running again on the survivor",
            )
            rerun = await started(events, data_dir, safe.job_id)
            orphans += rerun
            release(data_dir, safe.job_id)
            done = await events.terminal(safe.job_id)
            assert done.state == "succeeded" and done.herk == "survivor"
            assert [e.herk for e in events.status_of(unsafe.job_id)] == ["victim"]
            assert unsafe.job_id not in survivor.master.flights
            assert await rabbit.queue_depth(topology.HERK_REQUESTS.name) == 0
            assert read_pids(data_dir / f"{unsafe.job_id}.pids")[0] in orphans  # one run only
        finally:
            kill_quietly(orphans)


class TestSigterm:
    async def test_stops_gracefully_and_hands_back_an_unfinished_safe_job(
        self,
        rabbit: Bus,
        herk_process,
        start_herk,
        actors: Path,
        data_dir: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv("MEGAM_HERK_STOP_GRACE", "0")
        events = await EventLog().attach(rabbit)
        node = herk_process("terminated")
        job = await submit(rabbit, job_request("test.sleep"))
        pids = await started(events, data_dir, job.job_id)
        try:
            node.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(node.wait, 60) == 0
            assert await wait_dead(pids) == []
            assert events.terminal_now(job.job_id) is None, "handed back, not concluded"

            await start_herk(rabbit, actors_dir=actors, name="next")
            pids += await started_again(data_dir, job.job_id, pids)
            release(data_dir, job.job_id)
            assert (await events.terminal(job.job_id)).herk == "next"
        finally:
            kill_quietly(pids)


class TestStopWithoutGrace:
    async def test_hands_back_what_may_run_again_and_records_what_may_not(
        self, bus: Bus, events: EventLog, start_herk, actors: Path, data_dir: Path
    ) -> None:
        first = await start_herk(bus, actors_dir=actors, name="first")
        safe = await submit(bus, job_request("test.sleep"))
        unsafe = await submit(bus, job_request("test.once"))
        pids = await started(events, data_dir, safe.job_id)
        pids += await started(events, data_dir, unsafe.job_id)
        try:
            await first.stop(grace=0)
            assert await wait_dead(pids) == []
            stopped = await events.terminal(unsafe.job_id)
            assert stopped.state == "interrupted"
            assert stopped.reason == "herk node first stopped before the job finished"
            assert events.terminal_now(safe.job_id) is None
            assert await bus.queue_depth(topology.HERK_REQUESTS.name) == 1

            await start_herk(bus, actors_dir=actors, name="second")
            pids += await started_again(data_dir, safe.job_id, pids)
            release(data_dir, safe.job_id)
            done = await events.terminal(safe.job_id)
            assert done.state == "succeeded" and done.herk == "second"
        finally:
            kill_quietly(pids)


class TestRetries:
    async def test_a_failed_idempotent_job_is_retried_as_a_new_attempt(
        self, bus: Bus, events: EventLog, start_herk, actors: Path
    ) -> None:
        await start_herk(bus, actors_dir=actors)
        request = await submit(bus, job_request("test.flaky"))
        done = await events.terminal(request.job_id)
        assert done.state == "succeeded" and done.attempt == 2
        history = [(e.attempt, str(e.state)) for e in events.status_of(request.job_id)]
        assert history == [(1, "running"), (1, "queued"), (2, "running"), (2, "succeeded")]
        retried = events.status_of(request.job_id)[1]
        assert retried.reason.startswith("attempt 1 failed: exit code 1: flaky failure 1; ")
        assert {line.text for line in events.lines(request.job_id)} >= {
            "flaky run 1",
            "flaky run 2",
        }

    async def test_the_next_attempt_waits_out_its_backoff_even_across_a_restart(
        self, bus: Bus, events: EventLog, start_herk, actors: Path
    ) -> None:
        first = await start_herk(bus, actors_dir=actors, name="first")
        request = await submit(bus, job_request("test.patient"))
        queued = await events.state(request.job_id, "queued")
        await first.stop(grace=0)  # the next attempt is already in the broker, due in 0.5 to 1 s

        await start_herk(bus, actors_dir=actors, name="second")
        done = await events.terminal(request.job_id)
        assert (done.state, done.attempt, done.herk) == ("succeeded", 2, "second")
        assert done.started_at - queued.at >= 0.5, "started before its backoff was over"

    async def test_the_last_failed_attempt_goes_to_the_dead_letter_queue(
        self, bus: Bus, events: EventLog, start_herk, actors: Path
    ) -> None:
        await start_herk(bus, actors_dir=actors)
        dead = await QueueLog().attach(bus, topology.HERK_REQUESTS_DEAD.name)
        request = await submit(bus, job_request("test.hopeless"))
        done = await events.terminal(request.job_id)
        assert done.state == "failed" and done.attempt == 2
        [letter] = await dead.wait_for(1)
        assert letter.headers[wire.REASON_HEADER] == (
            "gave up after 2 attempts: exit code 1: flaky failure 2"
        )
        assert b'"attempt":2' in letter.body

    async def test_a_job_that_is_not_idempotent_is_never_retried(
        self, bus: Bus, events: EventLog, start_herk, actors: Path, data_dir: Path
    ) -> None:
        await start_herk(bus, actors_dir=actors)
        request = await submit(bus, job_request("test.once"))
        pids = await started(events, data_dir, request.job_id)
        kill_quietly(pids[:1])  # the job dies on its own: a failure, not a cancel
        done = await events.terminal(request.job_id)
        assert done.state == "failed" and done.reason == "killed by signal SIGKILL"
        assert events.states(request.job_id) == ["running", "failed"]
        kill_quietly(pids)
