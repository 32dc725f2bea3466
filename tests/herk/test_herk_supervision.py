"""The master supervises its worker actors: a crashed or stuck worker is replaced, and its job
is recorded ``interrupted`` instead of being silently lost.

The faults are injected into the worker's call to the runner (``herk.runner.run_process``): a
crash is an exception escaping the actor, a stuck worker is a thread that never returns.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from herk_testkit import EventLog, job_request, submit, write_actor

from herk import runner, supervision
from megam.bus import Bus


@pytest.fixture
def actors(tmp_path: Path) -> Path:
    directory = tmp_path / "actors"
    write_actor(
        directory,
        "test.true",
        'description = "runs /bin/true"\nidempotent = true\ntimeout = 1\nkill_grace = 0.5\n'
        'argv = ["/bin/true"]\n',
    )
    return directory


class TestCrashedWorker:
    async def test_is_replaced_and_its_job_recorded_interrupted(
        self,
        bus: Bus,
        events: EventLog,
        start_herk,
        actors: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        real = runner.run_process
        calls = []

        def crash_once(*args, **kwargs):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("boom in the worker")
            return real(*args, **kwargs)

        monkeypatch.setattr(runner, "run_process", crash_once)
        herk = await start_herk(bus, actors_dir=actors, workers=1)

        crashed = await submit(bus, job_request("test.true"))
        done = await events.terminal(crashed.job_id)
        assert done.state == "interrupted"
        assert done.reason == "worker crashed: RuntimeError: boom in the worker"
        assert events.states(crashed.job_id)[-1:] == ["interrupted"]
        assert done.started_at > 0, "it had started (``running`` may be skipped: a quick end)"

        after = await submit(bus, job_request("test.true"))
        assert (await events.terminal(after.job_id)).state == "succeeded"
        assert herk.pool.replacements == 1
        assert herk.heartbeat().workers == 1


class TestStuckWorker:
    async def test_is_abandoned_after_the_jobs_timeout_and_replaced(
        self,
        bus: Bus,
        events: EventLog,
        start_herk,
        actors: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        release = threading.Event()
        real = runner.run_process
        calls = []

        def hang_once(*args, **kwargs):
            calls.append(1)
            if len(calls) == 1:
                release.wait(60)  # a worker thread that stopped polling its job
            return real(*args, **kwargs)

        monkeypatch.setattr(runner, "run_process", hang_once)
        monkeypatch.setattr(supervision, "STUCK_MARGIN", 0.5)
        herk = await start_herk(bus, actors_dir=actors, workers=1)
        try:
            stuck = await submit(bus, job_request("test.true"))
            done = await events.terminal(stuck.job_id)
            assert done.state == "interrupted"
            assert done.reason.startswith("worker stuck past the job's timeout of 1 s")

            after = await submit(bus, job_request("test.true"))
            assert (await events.terminal(after.job_id)).state == "succeeded"
            assert herk.pool.replacements == 1
        finally:
            release.set()


class TestDeadIdleWorker:
    async def test_is_restarted_before_it_is_given_a_job(
        self, bus: Bus, events: EventLog, start_herk, actors: Path
    ) -> None:
        herk = await start_herk(bus, actors_dir=actors, workers=1)
        [slot] = herk.pool.slots
        slot.ref.stop()  # an actor gone while idle (e.g. pykka stopped every actor)

        request = await submit(bus, job_request("test.true"))
        assert (await events.terminal(request.job_id)).state == "succeeded"
        assert herk.pool.replacements == 1
