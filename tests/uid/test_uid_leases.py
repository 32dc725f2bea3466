"""Worker-id leases, by file lock and by RabbitMQ exclusive queue: the same promises from both."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from megam.snowflake import Generator, NotLeased, decode, wall_ms
from tests.faults.outage_proxy import OutageProxy
from tests.polling import poll_until
from tests.uid.conftest import make_leaser
from uid.keeper import LeaseKeeper, LeasePolicy
from uid.lease import Lease, Leaser, LeaseUnavailable

WORKER_PROGRAM = Path(__file__).with_name("worker_process.py")
QUICK = LeasePolicy(
    horizon_ms=300, detached_horizon_ms=300, renew_every_s=0.05, retry_every_s=0.05
)


@pytest.fixture
async def held() -> AsyncIterator[list[Lease]]:
    """Leases a test took; released at the end whatever happens."""
    leases: list[Lease] = []
    yield leases
    for lease in leases:
        await lease.release(-1)


@pytest.fixture
def holder_process(leaser_kind: str, lease_location: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding worker id 4, with a horizon 200 ms ahead of its clock."""
    process = subprocess.Popen(
        [sys.executable, str(WORKER_PROGRAM), "hold", leaser_kind, lease_location, "4", "200"],
        stdout=subprocess.PIPE,
        text=True,
    )
    yield process
    process.kill()
    process.wait(10)


def announcement(process: subprocess.Popen[str]) -> dict[str, int]:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"the holder exited with {process.wait(10)}"
    return json.loads(line)


async def acquire_soon(leaser: Leaser, worker_id: int, timeout: float = 10) -> Lease:
    """The broker notices a dead connection a moment after the process dies."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                return await leaser.acquire(0, worker_id)
            except LeaseUnavailable:
                await asyncio.sleep(0.05)


class TestOneHolderPerWorkerId:
    async def test_automatic_leases_take_the_first_free_ids(
        self, leaser: Leaser, held: list[Lease]
    ) -> None:
        held.append(await leaser.acquire(0, None))
        held.append(await leaser.acquire(0, None))
        assert [lease.worker_id for lease in held] == [0, 1]

    async def test_a_configured_id_that_is_held_is_refused_with_a_clear_message(
        self, leaser: Leaser, held: list[Lease]
    ) -> None:
        held.append(await leaser.acquire(0, 7))
        with pytest.raises(LeaseUnavailable, match="worker id 7 of datacenter 0 is already leased"):
            await leaser.acquire(0, 7)

    async def test_an_id_held_by_another_process_is_skipped_or_refused(
        self, leaser: Leaser, holder_process: subprocess.Popen[str], held: list[Lease]
    ) -> None:
        assert announcement(holder_process)["worker_id"] == 4
        with pytest.raises(LeaseUnavailable, match="worker id 4"):
            await leaser.acquire(0, 4)
        held.append(await leaser.acquire(0, None, prefer=4))
        assert held[0].worker_id == 0

    async def test_every_id_taken_means_no_lease(self, leaser: Leaser, held: list[Lease]) -> None:
        for _ in range(32):
            held.append(await leaser.acquire(1, None))
        assert sorted(lease.worker_id for lease in held) == list(range(32))
        with pytest.raises(LeaseUnavailable, match="all 32 worker ids of datacenter 1"):
            await leaser.acquire(1, None)


class TestHandOver:
    async def test_a_released_id_is_free_again_and_remembers_the_last_millisecond(
        self, leaser: Leaser
    ) -> None:
        first = await leaser.acquire(0, 3)
        assert first.previous_horizon_ms == -1
        await first.persist_horizon(5_000)
        await first.release(1_234)
        second = await leaser.acquire(0, 3)
        try:
            assert second.previous_horizon_ms == 1_234
        finally:
            await second.release(-1)

    async def test_a_killed_holder_frees_its_id_and_its_horizon_survives(
        self, leaser: Leaser, holder_process: subprocess.Popen[str]
    ) -> None:
        horizon = announcement(holder_process)["horizon_ms"]
        os.kill(holder_process.pid, signal.SIGKILL)
        holder_process.wait(10)
        successor = await acquire_soon(leaser, 4)
        try:
            assert successor.previous_horizon_ms == horizon
        finally:
            await successor.release(-1)

    async def test_a_holder_killed_before_persisting_anything_keeps_the_old_horizon(
        self, leaser_kind: str, lease_location: str, holder_process: subprocess.Popen[str]
    ) -> None:
        horizon = announcement(holder_process)["horizon_ms"]
        os.kill(holder_process.pid, signal.SIGKILL)
        holder_process.wait(10)
        peeker = subprocess.Popen(
            [sys.executable, str(WORKER_PROGRAM), "peek", leaser_kind, lease_location, "4"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert announcement(peeker)["previous_horizon_ms"] == horizon
        finally:
            peeker.kill()
            peeker.wait(10)
        last = await acquire_soon(make_leaser(leaser_kind, lease_location), 4)
        try:
            assert last.previous_horizon_ms == horizon
        finally:
            await last.release(-1)

    async def test_a_successor_issues_only_after_the_killed_holders_horizon(
        self, leaser_kind: str, lease_location: str, holder_process: subprocess.Popen[str]
    ) -> None:
        horizon = announcement(holder_process)["horizon_ms"]
        os.kill(holder_process.pid, signal.SIGKILL)
        holder_process.wait(10)
        keeper = LeaseKeeper(make_leaser(leaser_kind, lease_location), 0, 4, policy=QUICK)
        async with asyncio.timeout(10):
            while True:
                try:
                    generator = await keeper.start()
                    break
                except LeaseUnavailable:
                    await asyncio.sleep(0.05)
        try:
            first = await generator.next_id_async()
            assert decode(first).timestamp_ms > horizon
            assert decode(first).worker_id == 4
        finally:
            await keeper.stop()

    async def test_a_clean_stop_lets_the_next_holder_start_at_once(self, leaser: Leaser) -> None:
        keeper = LeaseKeeper(leaser, 0, 9, policy=LeasePolicy(horizon_ms=60_000))
        generator = await keeper.start()
        last = await generator.next_id_async()
        await keeper.stop()
        with pytest.raises(NotLeased):
            generator.try_next_id()
        successor = await leaser.acquire(0, 9)
        try:
            # The last millisecond used, not the minute-long horizon: no wait on restart.
            assert successor.previous_horizon_ms == decode(last).timestamp_ms
        finally:
            await successor.release(-1)

    async def test_a_horizon_far_ahead_of_the_clock_is_refused(self, leaser: Leaser) -> None:
        lease = await leaser.acquire(0, 2)
        await lease.release(wall_ms() + 3_600_000)  # a holder whose clock was an hour ahead
        keeper = LeaseKeeper(leaser, 0, 2, policy=QUICK)
        with pytest.raises(LeaseUnavailable, match="ahead of this host's clock"):
            await keeper.start()
        lease = await leaser.acquire(0, 2)  # the refusal gave the id back
        await lease.release(-1)


class TestKeeper:
    async def test_renews_the_horizon_while_running(self, leaser: Leaser) -> None:
        keeper = LeaseKeeper(leaser, 0, None, policy=QUICK)
        generator = await keeper.start()
        try:
            async with asyncio.timeout(10):
                while keeper.renewals < 3:
                    await asyncio.sleep(0.02)
            # Issuing well past the first horizon (300 ms) works only because it was renewed.
            await asyncio.sleep(0.4)
            assert generator.try_next_id() > 0
            assert keeper.status()["serving"] is True
        finally:
            await keeper.stop()
        assert keeper.status()["serving"] is False


class TestLosingTheBrokerConnection:
    """An exclusive queue goes with its connection; the keeper goes on issuing up to the horizon
    it persisted (LeasePolicy.detached_horizon_ms), which any next holder waits out."""

    async def test_ids_keep_coming_and_resume_without_a_gap_when_the_broker_returns(
        self, proxy: OutageProxy
    ) -> None:
        policy = dataclasses.replace(QUICK, detached_horizon_ms=60_000)
        keeper = LeaseKeeper(make_leaser("rabbitmq", proxy.url), 0, None, policy=policy)
        generator = await keeper.start()
        try:
            before = await generator.next_id_async()
            await proxy.outage()
            await poll_until(lambda: keeper.losses == 1)
            status = keeper.status()
            assert status["serving"] is True and "lost the lease" in status["lease_lost"]
            during = [await generator.next_id_async() for _ in range(1000)]
            assert all(decode(i).timestamp_ms <= status["issuing_until_ms"] for i in during)

            proxy.restore()
            await poll_until(lambda: keeper.status()["lease"] is not None)
            after = await generator.next_id_async()
            assert before < during[0] and during[-1] < after
            assert decode(after).timestamp_ms <= status["issuing_until_ms"], "no wait, no gap"
            assert keeper.losses == 1
        finally:
            await keeper.stop()

    async def test_ids_stop_at_the_horizon_if_the_broker_stays_away(
        self, proxy: OutageProxy
    ) -> None:
        policy = dataclasses.replace(QUICK, detached_horizon_ms=1_000, renew_every_s=0.2)
        keeper = LeaseKeeper(make_leaser("rabbitmq", proxy.url), 0, None, policy=policy)
        generator = await keeper.start()
        try:
            await proxy.outage()
            await poll_until(lambda: keeper.losses == 1)
            await poll_until(lambda: keeper.status()["serving"] is False)
            assert "its horizon passed" in keeper.status()["reason"]
            with pytest.raises(NotLeased, match="horizon"):
                await generator.next_id_async()
            proxy.restore()
            assert await first_id_issued(generator) > 0
        finally:
            await keeper.stop()

    async def test_a_successor_waits_out_the_horizon_of_a_holder_cut_off_from_the_broker(
        self, proxy: OutageProxy, amqp_url: str
    ) -> None:
        """A partition: the cut-off holder goes on issuing while another service takes its id
        through a path that still reaches the broker. No id is issued twice."""
        policy = dataclasses.replace(QUICK, detached_horizon_ms=1_500)
        cut_off = LeaseKeeper(make_leaser("rabbitmq", proxy.url), 0, 11, policy=policy)
        first = await cut_off.start()
        successor = LeaseKeeper(make_leaser("rabbitmq", amqp_url), 0, 11, policy=policy)
        try:
            await proxy.outage()
            await poll_until(lambda: cut_off.losses == 1)
            issuing_until = cut_off.status()["issuing_until_ms"]
            from_cut_off = asyncio.create_task(drain(first))
            second = await successor.start()  # the broker let it have id 11 at once
            from_successor = [await second.next_id_async() for _ in range(2000)]
            await successor.stop()  # and the id goes back to the holder that was cut off
            proxy.restore()
            back = [await first_id_issued(first)] + [await first.next_id_async() for _ in range(99)]

            issued = [*await from_cut_off, *from_successor, *back]
            assert len(set(issued)) == len(issued)
            assert max(decode(i).timestamp_ms for i in await from_cut_off) <= issuing_until
            assert min(decode(i).timestamp_ms for i in from_successor) > issuing_until
            assert min(back) > max(from_successor), "it resumed after its successor's ids"
        finally:
            await successor.stop()
            proxy.restore()
            await cut_off.stop()


async def first_id_issued(generator: Generator, timeout: float = 20) -> int:
    async with asyncio.timeout(timeout):
        while True:
            try:
                return await generator.next_id_async()
            except NotLeased:
                await asyncio.sleep(0.02)


async def drain(generator: Generator) -> list[int]:
    """Every id the generator gives until it refuses (its horizon passed)."""
    issued = []
    while True:
        try:
            issued.append(await generator.next_id_async())
        except NotLeased:
            return issued


@pytest.fixture
async def proxy(amqp_url: str) -> AsyncIterator[OutageProxy]:
    relay = await OutageProxy.start(amqp_url)
    yield relay
    await relay.close()


class TestAutomaticIdsAfterAHolderVanished:
    async def test_an_id_whose_detached_horizon_still_runs_is_passed_over(
        self, amqp_url: str
    ) -> None:
        """A holder cut off mid-horizon may still issue on its id for up to a detached horizon;
        an automatic lease takes another free id rather than wait that out."""
        leaser = make_leaser("rabbitmq", amqp_url)
        vanished = await leaser.acquire(0, 0)
        await vanished.persist_horizon(wall_ms() + 60_000)
        await vanished._connection.close()  # type: ignore[attr-defined]  # no release: a crash
        keeper = LeaseKeeper(leaser, 0, None, policy=QUICK)
        generator = await keeper.start()
        try:
            assert generator.worker_id == 1
            assert decode(await generator.next_id_async()).worker_id == 1
        finally:
            await keeper.stop()
        again = await acquire_soon(leaser, 0)  # the id passed over was given back, not kept
        assert again.previous_horizon_ms > wall_ms()
        await again.release(again.previous_horizon_ms)
