"""The service as it runs: the client services use, the in-process source of ``megam up``, and the
``megam uid`` command refusing a worker id that another live service holds."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from megam import ids
from megam.config import Settings
from megam.ids import IdServiceUnavailable, RemoteIdSource, batch_from_answer
from megam.snowflake import IDS_PER_MS, decode
from tests.uid.conftest import make_leaser
from uid.main import RunningService, local_id_source, start

MakeSettings = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakeSettings:
    monkeypatch.delenv("MEGAM_AMQP_URL", raising=False)

    def make(**overrides: object) -> Settings:
        return Settings.from_env(data_dir=tmp_path, uid_port=0, **overrides)

    return make


@pytest.fixture
async def service(make_settings: MakeSettings) -> AsyncIterator[RunningService]:
    running = await start(make_settings(), host="127.0.0.1")
    yield running
    await running.stop()


async def requests_by(service: RunningService, agent: str) -> float:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{service.port}/metrics") as resp,
    ):
        for line in (await resp.text()).splitlines():
            if line.startswith(f'megam_uid_agent_requests_total{{agent="{agent}"}}'):
                return float(line.split()[1])
    return 0.0


class TestRemoteIdSource:
    async def test_renders_megam_ids_from_the_service(self, service: RunningService) -> None:
        source = RemoteIdSource(f"http://127.0.0.1:{service.port}")
        try:
            rendered = await source.next_id("RIP")
        finally:
            await source.close()
        parsed = ids.parse(rendered)
        assert parsed.prefix == "RIP"
        assert decode(parsed.value).worker_id == service.generator.worker_id

    async def test_prefetches_a_batch_at_a_time(self, service: RunningService) -> None:
        source = RemoteIdSource(f"http://127.0.0.1:{service.port}", batch=64, agent="gateway")
        try:
            values = [await source.next_int() for _ in range(300)]
        finally:
            await source.close()
        assert values == sorted(set(values))
        assert await requests_by(service, "gateway") == 5  # ceil(300 / 64)

    async def test_concurrent_callers_share_fetches_and_never_share_ids(
        self, service: RunningService
    ) -> None:
        source = RemoteIdSource(f"http://127.0.0.1:{service.port}", batch=16, agent="herk")
        try:
            values = await asyncio.gather(*(source.next_int() for _ in range(200)))
        finally:
            await source.close()
        assert len(set(values)) == 200
        assert await requests_by(service, "herk") == 13  # ceil(200 / 16): no fetch wasted

    @pytest.mark.parametrize(("count", "requests"), [(2 * IDS_PER_MS, 1), (25_000, 3)])
    async def test_a_large_request_bypasses_the_buffer_in_batches_the_service_allows(
        self, service: RunningService, count: int, requests: int
    ) -> None:
        source = RemoteIdSource(f"http://127.0.0.1:{service.port}", agent="bulk")
        try:
            values = await source.next_ints(count)
        finally:
            await source.close()
        assert len(values) == count
        assert values == sorted(set(values))
        assert await requests_by(service, "bulk") == requests

    async def test_stale_prefetched_ids_are_dropped(self, service: RunningService) -> None:
        source = RemoteIdSource(f"http://127.0.0.1:{service.port}", agent="stale", max_age_s=0)
        try:
            for _ in range(3):
                await source.next_int()
        finally:
            await source.close()
        assert await requests_by(service, "stale") == 3

    async def test_a_service_without_a_lease_is_reported_unavailable(
        self, service: RunningService
    ) -> None:
        service.generator.revoke("lost the lease")
        source = RemoteIdSource(f"http://127.0.0.1:{service.port}")
        try:
            with pytest.raises(IdServiceUnavailable, match=r"answered 503.*lost the lease"):
                await source.next_int()
        finally:
            await source.close()

    async def test_an_unreachable_service_is_reported_unavailable(
        self, service: RunningService
    ) -> None:
        port = service.port
        await service.stop()
        source = RemoteIdSource(f"http://127.0.0.1:{port}", timeout_s=2)
        try:
            with pytest.raises(IdServiceUnavailable, match="unreachable"):
                await source.next_int()
        finally:
            await source.close()

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (b"<html>", "malformed"),
            (b'{"id": 1}', "malformed"),
            (b'{"ids": [1, 2]}', "asked for 3"),
            (b'{"ids": [1, 3, 2]}', "not increasing"),
            (b'{"ids": [1, "2", 3]}', "not increasing integers"),
        ],
    )
    def test_an_answer_that_is_not_the_ids_asked_for_is_refused(
        self, body: bytes, message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            batch_from_answer(body, 3)


class TestInProcessSource:
    async def test_issues_ids_and_releases_the_lease_on_exit(
        self, make_settings: MakeSettings, tmp_path: Path
    ) -> None:
        async with local_id_source(make_settings(worker_id=12)) as source:
            node = await source.next_id("NOD")
            batch = await source.next_ints(2 * IDS_PER_MS)
        assert decode(ids.parse(node).value).worker_id == 12
        assert len(set(batch)) == 2 * IDS_PER_MS and batch[0] > ids.parse(node).value
        lease = await make_leaser("file", str(tmp_path / "uid")).acquire(0, 12)
        await lease.release(-1)

    async def test_leases_through_rabbitmq_when_a_broker_is_configured(
        self, make_settings: MakeSettings, amqp_url: str
    ) -> None:
        async with local_id_source(make_settings(amqp_url=amqp_url)) as source:
            first = await source.next_int()
            with pytest.raises(Exception, match="already leased"):
                await make_leaser("rabbitmq", amqp_url).acquire(0, decode(first).worker_id)
        lease = await make_leaser("rabbitmq", amqp_url).acquire(0, decode(first).worker_id)
        await lease.release(-1)


async def run_uid_command(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uid",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def listening_port(process: asyncio.subprocess.Process) -> int:
    assert process.stderr is not None
    async with asyncio.timeout(30):
        while line := await process.stderr.readline():
            event = json.loads(line)
            if event["event"] == "uid.listening":
                return int(event["port"])
    raise AssertionError(f"the service exited with {await process.wait()} before listening")


class TestTheUidCommand:
    async def test_a_second_service_with_the_same_worker_id_refuses_to_serve(
        self, leaser_kind: str, lease_location: str, make_settings: MakeSettings, tmp_path: Path
    ) -> None:
        amqp_url = lease_location if leaser_kind == "rabbitmq" else None
        first = await start(make_settings(worker_id=3, amqp_url=amqp_url), host="127.0.0.1")
        try:
            env = {"MEGAM_DATA_DIR": str(tmp_path), "MEGAM_AMQP_URL": amqp_url or ""}
            second = await run_uid_command("--worker-id", "3", env=env)
            _, stderr = await asyncio.wait_for(second.communicate(), 30)
            assert second.returncode == 3
            assert (
                "megam uid: worker id 3 of datacenter 0 is already leased by another running "
                "uid service" in stderr.decode()
            )
            assert first.generator.serving
        finally:
            await first.stop()

    async def test_sigterm_stops_the_service_and_frees_its_id(self, tmp_path: Path) -> None:
        process = await run_uid_command(
            "--worker-id", "21", env={"MEGAM_DATA_DIR": str(tmp_path), "MEGAM_AMQP_URL": ""}
        )
        try:
            port = await listening_port(process)
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/id") as resp,
            ):
                issued = (await resp.json())["id"]
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 30) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        lease = await make_leaser("file", str(tmp_path / "uid")).acquire(0, 21)
        try:
            assert lease.previous_horizon_ms == decode(issued).timestamp_ms
        finally:
            await lease.release(-1)
