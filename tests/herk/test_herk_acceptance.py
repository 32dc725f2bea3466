"""Ack on acceptance: a job that must not run twice, or that may outlive RabbitMQ's
``consumer_timeout``, has its request acknowledged (with the broker's proof) before its process
starts. The broker then never redelivers it while it runs, so it never runs twice; a job whose
acceptance cannot be proven runs under its claim, so it runs once whatever the broker did."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from herk_testkit import (
    BUNDLED_ACTORS,
    EventLog,
    job_request,
    kill_quietly,
    read_pids,
    release,
    sleeper_actor,
    started,
    submit,
    until,
)
from prometheus_client import REGISTRY

from herk.acceptance import CONSUMER_TIMEOUT_VARIABLE, AcceptancePolicy
from herk.catalogue import load_catalogue
from herk.events import EventPublisher
from megam import topology
from megam.bus import Bus, BusError
from megam.bus.amqp import AmqpBus, _AmqpDelivery
from tests.faults.tcp_proxy import TcpProxy

POLICY = AcceptancePolicy(consumer_timeout=200)
"""Holds up to 140 s: test.long (150 s timeout) is acked on acceptance, test.sleep (60 s) is not."""


@pytest.fixture
def actors(tmp_path: Path) -> Path:
    directory = tmp_path / "actors"
    sleeper_actor(directory, "test.sleep", timeout=60)
    sleeper_actor(directory, "test.long", timeout=150)
    sleeper_actor(directory, "test.once", idempotent=False)
    return directory


@pytest.fixture
async def proxied(amqp_url: str, rabbit: Bus) -> AsyncIterator[tuple[TcpProxy, AmqpBus]]:
    """A bus of its own for the herk node, through a TCP relay the test can break."""
    proxy = await TcpProxy.start(amqp_url)
    bus = AmqpBus(proxy.url, publish_timeout=2)
    await bus.connect()
    yield proxy, bus
    await bus.close()
    await proxy.close()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class TestWhichJobsAreAckedOnAcceptance:
    def test_jobs_not_idempotent_or_longer_than_the_consumer_timeout_allows(self) -> None:
        catalogue = load_catalogue(BUNDLED_ACTORS)
        early = {
            name for name in catalogue if AcceptancePolicy().acks_on_accept(catalogue.get(name))
        }
        assert early == {"knife.create", "knife.delete", "chef.converge"}

    def test_a_shorter_consumer_timeout_moves_more_jobs_to_acceptance(self) -> None:
        catalogue = load_catalogue(BUNDLED_ACTORS)
        policy = AcceptancePolicy(consumer_timeout=120)
        assert policy.acks_on_accept(catalogue.get("local.create"))  # 60 s + 30 s backoff + …
        assert not policy.acks_on_accept(catalogue.get("noop"))

    def test_the_consumer_timeout_comes_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(CONSUMER_TIMEOUT_VARIABLE, "3600")
        assert AcceptancePolicy.from_env().consumer_timeout == 3600
        monkeypatch.setenv(CONSUMER_TIMEOUT_VARIABLE, "half an hour")
        with pytest.raises(ValueError, match=CONSUMER_TIMEOUT_VARIABLE):
            AcceptancePolicy.from_env()


class TestTheBrokerTakingDeliveriesBack:
    async def test_redelivers_the_held_job_only_and_neither_runs_twice(
        self, rabbit: Bus, proxied, start_herk, actors: Path, data_dir: Path
    ) -> None:
        """What ``consumer_timeout`` does to a long delivery: the broker closes the consumer's
        channel and takes back what it held. Here the node's connection is cut instead."""
        proxy, bus = proxied
        events = await EventLog().attach(rabbit)
        herk = await start_herk(bus, actors_dir=actors, policy=POLICY, heartbeat_seconds=0.2)
        long, short = job_request("test.long"), job_request("test.sleep")
        await submit(rabbit, long)
        await submit(rabbit, short)
        pids = await started(events, data_dir, long.job_id)
        pids += await started(events, data_dir, short.job_id)
        try:
            beat = await events.wait_until(
                lambda: next((b for b in events.heartbeats if len(b.jobs) == 2), 0),
                "a heartbeat listing both jobs",
            )
            assert {j.job_id: j.accepted for j in beat.jobs} == {
                long.job_id: True,
                short.job_id: False,
            }
            redelivered = sample("megam_herk_redeliveries_total", type="test.sleep")

            await proxy.cut()  # the broker takes back every unacked delivery of that connection
            await until(lambda: herk.bus.connected and herk.bus.reconnects, "a reconnection")

            for job in (long, short):
                release(data_dir, job.job_id)
            for job in (long, short):
                assert (await events.terminal(job.job_id)).state == "succeeded"
            # The held request comes back (to this node, the only one): answered, not re-run.
            await until(
                lambda: sample("megam_herk_redeliveries_total", type="test.sleep") > redelivered,
                "the held request to come back",
            )
            await events.wait_until(
                lambda: len(events.status_of(short.job_id)) == 3, "the redelivery answered"
            )
            assert sample("megam_herk_redeliveries_total", type="test.long") == 0
            assert read_pids(data_dir / f"{long.job_id}.pids") == pids[:2], "one run"
            assert read_pids(data_dir / f"{short.job_id}.pids") == pids[2:], "one run"
            assert herk.bus.reconnects >= 1
            assert await rabbit.queue_depth(topology.HERK_REQUESTS.name) == 0
        finally:
            kill_quietly(pids)


class TestAnAcceptanceThatCannotBeProven:
    """Whether the broker took the ack is unknown: the job runs, under its claim, so it runs
    once either way (before, it was not started, and stayed `running` for good whenever the
    broker had taken the ack: seen when a cluster node died mid-burst, tests/cluster)."""

    async def test_the_broker_that_missed_the_ack_gives_it_back_and_the_job_runs_once(
        self,
        rabbit: Bus,
        proxied,
        start_herk,
        actors: Path,
        data_dir: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        proxy, bus = proxied
        events = await EventLog().attach(rabbit)
        request = job_request("test.once")
        real_status = EventPublisher.status
        lost: list[str] = []

        async def lose_the_ack(self, job, state, **fields):
            await real_status(self, job, state, **fields)
            if state == "running" and not lost:
                lost.append(job.job_id)
                proxy.blackhole()  # the ack that follows never reaches the broker

        monkeypatch.setattr(EventPublisher, "status", lose_the_ack)
        unconfirmed = sample("megam_herk_accepts_unconfirmed_total")
        await start_herk(bus, actors_dir=actors)
        await submit(rabbit, request)

        await until(
            lambda: sample("megam_herk_accepts_unconfirmed_total") > unconfirmed,
            "the acceptance to fail",
        )
        await proxy.cut()  # the broker sees the consumer go and redelivers the request

        pids = await started(events, data_dir, request.job_id)
        try:
            release(data_dir, request.job_id)
            assert (await events.terminal(request.job_id)).state == "succeeded"
            assert read_pids(data_dir / f"{request.job_id}.pids") == pids, "one run"
        finally:
            kill_quietly(pids)


    async def test_a_job_whose_ack_the_broker_took_without_a_proof_still_runs_once(
        self, rabbit: Bus, start_herk, actors: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        events = await EventLog().attach(rabbit)
        request = job_request("test.once")
        real_ack = _AmqpDelivery.ack
        lost: list[bool] = []

        async def lose_the_proof(self, *, confirmed: bool = False) -> None:
            await real_ack(self)  # the broker settles it: it will never come back
            if confirmed and not lost:
                lost.append(True)
                raise BusError("the proof of the ack was lost")

        monkeypatch.setattr(_AmqpDelivery, "ack", lose_the_proof)
        unconfirmed = sample("megam_herk_accepts_unconfirmed_total")
        await start_herk(rabbit, actors_dir=actors)
        await submit(rabbit, request)

        pids = await started(events, data_dir, request.job_id)
        try:
            assert sample("megam_herk_accepts_unconfirmed_total") > unconfirmed
            release(data_dir, request.job_id)
            assert (await events.terminal(request.job_id)).state == "succeeded"
            assert read_pids(data_dir / f"{request.job_id}.pids") == pids, "one run"
            assert await rabbit.queue_depth(topology.HERK_REQUESTS.name) == 0
        finally:
            kill_quietly(pids)


class TestNoHoardingBehindAcceptedJobs:
    async def test_a_node_whose_workers_run_accepted_jobs_takes_no_more_requests(
        self, bus: Bus, events: EventLog, start_herk, actors: Path, data_dir: Path
    ) -> None:
        herk = await start_herk(bus, actors_dir=actors, workers=1)
        accepted = await submit(bus, job_request("test.once"))
        pids = await started(events, data_dir, accepted.job_id)
        try:
            waiting = await submit(bus, job_request("test.sleep"))
            await until(lambda: herk.heartbeat().jobs[0].accepted, "the job to be accepted")
            await until(lambda: herk.intake_prefetch == 0, "the node to stop receiving")
            assert waiting.job_id not in herk.master.flights
            assert await depth_settles(bus, 1), "the request waits in the queue, not in herk"

            release(data_dir, accepted.job_id)
            assert (await events.terminal(accepted.job_id)).state == "succeeded"
            pids += await started(events, data_dir, waiting.job_id)
            release(data_dir, waiting.job_id)
            assert (await events.terminal(waiting.job_id)).state == "succeeded"
        finally:
            kill_quietly(pids)


async def depth_settles(bus: Bus, expected: int) -> bool:
    """RabbitMQ reports queue depth a moment after a publish is confirmed."""
    for _ in range(100):
        if await bus.queue_depth(topology.HERK_REQUESTS.name) == expected:
            return True
        await asyncio.sleep(0.05)
    return False
