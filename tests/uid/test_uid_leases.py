"""Worker-id leases, by file lock and by RabbitMQ exclusive queue: the same promises from both."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from megam.snowflake import NotLeased, decode, wall_ms
from tests.uid.conftest import make_leaser
from uid.keeper import LeaseKeeper, LeasePolicy
from uid.lease import Lease, Leaser, LeaseUnavailable

WORKER_PROGRAM = Path(__file__).with_name("worker_process.py")
QUICK = LeasePolicy(horizon_ms=300, renew_every_s=0.05, retry_every_s=0.05)


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


async def rabbitmqctl(*args: str) -> None:
    """Without blocking the loop: the keeper must see what the broker does as it happens."""
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "-q", *args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    assert await asyncio.wait_for(process.wait(), 60) == 0


async def eventually(condition: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


class TestLosingTheBrokerConnection:
    async def test_ids_stop_at_once_and_resume_after_a_new_lease(self, amqp_url: str) -> None:
        vhost = amqp_url.rsplit("/", 1)[1]
        keeper = LeaseKeeper(make_leaser("rabbitmq", amqp_url), 0, None, policy=QUICK)
        generator = await keeper.start()
        try:
            before = await generator.next_id_async()
            # The broker drops the connection and, for now, refuses a new one.
            await rabbitmqctl("clear_permissions", "-p", vhost, "guest")
            await rabbitmqctl("close_all_connections", "-p", vhost, "test: lease lost")
            await eventually(lambda: keeper.losses == 1)
            with pytest.raises(NotLeased, match="lease"):
                generator.try_next_id()
            assert keeper.status()["serving"] is False
            await rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
            await eventually(lambda: generator.serving)
            after = await generator.next_id_async()
            assert after > before
            assert keeper.losses == 1
        finally:
            await keeper.stop()
