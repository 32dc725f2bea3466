"""The master alone: no herk node around it, only the embedded bus, a pool of real worker actors
and an observer that records the flow's steps. What a delivery becomes, step by step."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from herk_testkit import (
    BUNDLED_ACTORS,
    EventLog,
    QueueLog,
    job_request,
    release,
    sleeper_actor,
    submit,
    submit_raw,
    until,
    wait_for_file,
    write_actor,
)

from herk.bridge import LoopBridge
from herk.catalogue import load_catalogue
from herk.events import EventPublisher
from herk.master import Master
from herk.observer import Happened, Step
from herk.orphans import GroupRegistry
from herk.outbox import EventOutbox
from herk.pool import WorkerPool
from herk.worker import worker_factory
from megam import topology, wire
from megam.bus import Bus, Delivery, Subscription
from megam.bus.embedded import EmbeddedBus
from megam.secrets import Sealer


class Steps(list[Happened]):
    def __call__(self, event: Happened) -> None:
        self.append(event)

    def of(self, step: Step) -> list[Happened]:
        return [event for event in self if event.step is step]


@pytest.fixture
def actors(tmp_path: Path) -> Path:
    directory = tmp_path / "actors"
    for bundled in ("noop", "shell.true"):
        (directory / f"{bundled}.toml").parent.mkdir(parents=True, exist_ok=True)
        (directory / f"{bundled}.toml").write_text((BUNDLED_ACTORS / f"{bundled}.toml").read_text())
    sleeper_actor(directory, "test.sleep")
    write_actor(
        directory,
        "test.fails",
        'description = "fails twice"\nidempotent = true\ntimeout = 10\n'
        'argv = ["/bin/false"]\n[retry]\nmax_attempts = 2\nbackoff = 30\nbackoff_max = 30\n'
        'retry_on = ["failed"]\n',
    )
    return directory


class Rig:
    def __init__(
        self, bus: Bus, master: Master, steps: Steps, events: EventLog, subscription: Subscription
    ) -> None:
        self.bus, self.master, self.steps, self.events = bus, master, steps, events
        self.subscription = subscription


@pytest.fixture
async def rig(actors: Path, data_dir: Path) -> AsyncIterator[Rig]:
    bus = EmbeddedBus()
    await bus.connect()
    await bus.declare(topology.EXCHANGES, topology.HERK_QUEUES + topology.GATEWAY_QUEUES)
    events = await EventLog().attach(bus)
    groups = GroupRegistry.open(data_dir / "groups")
    bridge = LoopBridge(asyncio.get_running_loop())
    outbox = EventOutbox(bus, data_dir / "outbox")
    await outbox.start()
    publisher = EventPublisher(bus, "solo", outbox)
    pool = WorkerPool(2, worker_factory("solo", publisher, data_dir, groups), bridge)
    steps = Steps()
    master = Master(
        "solo",
        bus,
        Sealer(Fernet.generate_key()),
        load_catalogue(actors),
        pool,
        publisher,
        bridge,
        observe=steps,
    )
    subscription = await bus.consume(topology.HERK_REQUESTS.name, master.handle, prefetch=4)
    yield Rig(bus, master, steps, events, subscription)
    master.stop_all("test over")
    await master.wait_idle(10)
    await subscription.cancel()
    await outbox.close(5)
    pool.stop()
    groups.close()
    await bus.close()


class TestOneDelivery:
    async def test_a_job_goes_held_run_concluded_released_and_its_request_is_settled(
        self, rig: Rig
    ) -> None:
        request = await submit(rig.bus, job_request("shell.true"))
        done = await rig.events.terminal(request.job_id)
        await rig.master.wait_idle(10)

        assert done.state == "succeeded" and done.herk == "solo"
        assert [e.step for e in rig.steps] == [
            Step.HELD,
            Step.RUN_STARTED,
            Step.RUN_ENDED,
            Step.CONCLUDED,
            Step.RELEASED,
        ]
        assert rig.steps.of(Step.CONCLUDED)[0].outcome == "succeeded"
        assert await rig.bus.queue_depth(topology.HERK_REQUESTS.name) == 0
        assert rig.master.flights == {}

    async def test_bytes_that_are_not_a_request_are_dead_lettered_and_nothing_runs(
        self, rig: Rig
    ) -> None:
        dead = await QueueLog().attach(rig.bus, topology.HERK_REQUESTS_DEAD.name)
        await submit_raw(rig.bus, b"\xff not json")
        [letter] = await dead.wait_for(1)

        assert letter.headers[wire.HERK_HEADER] == "solo"
        assert [(e.step, e.kind) for e in rig.steps] == [(Step.DEAD_LETTERED, "rejected")]

    async def test_an_outcome_already_recorded_answers_a_second_delivery_without_a_run(
        self, rig: Rig
    ) -> None:
        # noop: no process, so no ``running`` announced however slow the machine is
        request = await submit(rig.bus, job_request("noop"))
        await rig.events.terminal(request.job_id)
        await submit(rig.bus, request)  # a redelivery after a lost ack looks like this
        await rig.events.wait_until(
            lambda: len(rig.events.status_of(request.job_id)) == 2, "the second answer"
        )

        assert rig.events.states(request.job_id) == ["succeeded", "succeeded"]
        assert len(rig.steps.of(Step.RUN_STARTED)) == 1


class TestSteering:
    async def test_a_job_cancelled_before_it_arrives_never_runs(self, rig: Rig) -> None:
        request = job_request("shell.true")
        rig.master.cancel(request.job_id, "ops")
        await submit(rig.bus, request)
        done = await rig.events.terminal(request.job_id)

        assert (done.state, done.reason) == ("cancelled", "cancelled before it started by ops")
        assert rig.steps.of(Step.RUN_STARTED) == []

    async def test_a_running_job_cancelled_ends_cancelled(self, rig: Rig, data_dir: Path) -> None:
        request = await submit(rig.bus, job_request("test.sleep"))
        await wait_for_file(data_dir / f"{request.job_id}.pids")
        assert rig.master.cancel(request.job_id, "ops")
        done = await rig.events.terminal(request.job_id)

        assert (done.state, done.reason) == ("cancelled", "cancelled while running")

    async def test_a_draining_master_hands_requests_back_as_fresh_messages(
        self, rig: Rig
    ) -> None:
        await rig.subscription.cancel()  # the test hands the master its one delivery itself
        rig.master.stop_accepting()
        seen: list[Delivery] = []

        async def first_to_the_master(delivery: Delivery) -> None:
            seen.append(delivery)
            if len(seen) == 1:
                await rig.master.handle(delivery)
            else:
                await delivery.ack()

        await rig.bus.consume(topology.HERK_REQUESTS.name, first_to_the_master, prefetch=1)
        request = await submit(rig.bus, job_request("shell.true"))
        await until(lambda: len(seen) == 2, "the copy handed back")
        copy = seen[1]

        assert copy.headers[wire.HANDED_BACK_HEADER] == "solo" and not copy.redelivered
        assert wire.decode(copy.body, wire.JobRequest).job_id == request.job_id
        assert seen[0].settled and rig.events.status_of(request.job_id) == []
        assert rig.steps.of(Step.HELD) == []

    async def test_a_running_job_is_held_and_listed_until_it_ends(
        self, rig: Rig, data_dir: Path
    ) -> None:
        request = await submit(rig.bus, job_request("test.sleep"))
        await wait_for_file(data_dir / f"{request.job_id}.pids")

        assert [held.job_id for held in rig.master.held_jobs()] == [request.job_id]
        assert not await rig.master.wait_idle(0.1)
        release(data_dir, request.job_id)
        assert await rig.master.wait_idle(10)
        await until(lambda: rig.events.terminal_now(request.job_id), "the outcome")


class TestConclusions:
    async def test_a_retryable_failure_is_queued_and_its_next_attempt_published(
        self, rig: Rig
    ) -> None:
        request = await submit(rig.bus, job_request("test.fails"))
        queued = await rig.events.state(request.job_id, "queued")

        flight = await _next_flight(rig, request.job_id)
        await until(lambda: rig.steps.of(Step.RETRIED), "the retry to be counted")

        assert queued.reason.startswith("attempt 1 failed: exit code 1; attempt 2 of 2 in")
        assert flight.job.request.attempt == 2 and flight.not_before > 0
        assert [e.step for e in rig.steps.of(Step.RETRIED)] == [Step.RETRIED]


async def _next_flight(rig: Rig, job_id: str):  # type: ignore[no-untyped-def]
    def next_attempt_held() -> bool:
        held = rig.master.flights.get(job_id)
        return held is not None and held.job.request.attempt == 2

    await until(next_attempt_held, "the next attempt to be held")
    return rig.master.flights[job_id]
