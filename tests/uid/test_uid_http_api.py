"""The HTTP API: ids, batches, decoding, health, metrics, and clear answers to bad requests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from megam.ids import MAX_BATCH
from megam.snowflake import IDS_PER_MS, Generator, decode
from tests.uid.conftest import START_MS, ManualClock
from uid.service import create_app

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]


@pytest.fixture
def generator(clock: ManualClock) -> Generator:
    return Generator(6, 2, clock=clock)


@pytest.fixture
async def client(aiohttp_client: MakeClient, generator: Generator) -> Client:
    return await aiohttp_client(create_app(generator))


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in metrics")


class TestIssuingIds:
    async def test_one_id_as_number_and_string(self, client: Client) -> None:
        resp = await client.get("/id", params={"agent": "gateway"})
        assert resp.status == 200
        assert resp.content_type == "application/json"
        body = await resp.json()
        assert body["id_str"] == str(body["id"])
        fields = decode(body["id"])
        assert (fields.timestamp_ms, fields.datacenter_id, fields.worker_id) == (START_MS, 2, 6)

    async def test_a_batch_of_increasing_ids_as_numbers_and_strings(self, client: Client) -> None:
        resp = await client.get("/ids", params={"count": "1000", "agent": "herk"})
        assert resp.status == 200
        body = await resp.json()
        assert len(body["ids"]) == 1000
        assert body["ids"] == sorted(set(body["ids"]))
        assert body["ids_str"] == [str(value) for value in body["ids"]]

    async def test_a_batch_larger_than_a_millisecond_waits_for_the_next_ones(
        self, client: Client, clock: ManualClock, generator: Generator
    ) -> None:
        generator.take(IDS_PER_MS)  # this millisecond is used up
        pending = asyncio.create_task(client.get("/ids", params={"count": str(MAX_BATCH)}))
        async with asyncio.timeout(10):
            while not pending.done():
                await asyncio.sleep(0.005)
                clock.advance(1)
        body = await pending.result().json()
        assert len(set(body["ids"])) == MAX_BATCH
        used = sorted({decode(value).timestamp_ms for value in body["ids"]})
        assert len(used) == 3  # 10,000 ids need three milliseconds of 4,096
        assert used == list(range(used[0], used[0] + 3))
        assert used[0] > START_MS and used[-1] <= clock()

    async def test_ids_from_consecutive_requests_keep_increasing(self, client: Client) -> None:
        seen: list[int] = []
        for _ in range(5):
            seen.append((await (await client.get("/id")).json())["id"])
            seen.extend((await (await client.get("/ids?count=7")).json())["ids"])
        assert seen == sorted(set(seen))


class TestBadRequests:
    @pytest.mark.parametrize(
        "query", ["", "count=0", f"count={MAX_BATCH + 1}", "count=abc", "count=-1", "count=1e3"]
    )
    async def test_a_count_outside_the_limits(self, client: Client, query: str) -> None:
        resp = await client.get(f"/ids?{query}")
        assert resp.status == 400
        assert f"1..{MAX_BATCH}" in (await resp.json())["error"]

    async def test_an_absurdly_long_count(self, client: Client) -> None:
        resp = await client.get("/ids", params={"count": "9" * 5000})
        assert resp.status == 400

    @pytest.mark.parametrize("agent", ["1abc", "a b", "a_b", "", "x" * 65, "é"])
    async def test_an_agent_name_like_the_original_rejected(
        self, client: Client, agent: str
    ) -> None:
        for path in ("/id", "/ids?count=1"):
            resp = await client.get(path, params={"agent": agent})
            assert resp.status == 400
            assert "agent must match" in (await resp.json())["error"]

    async def test_nothing_is_issued_for_a_bad_request(
        self, client: Client, generator: Generator
    ) -> None:
        await client.get("/ids", params={"count": "5", "agent": "9"})
        assert generator.ids_issued == 0


class TestDecoding:
    @pytest.mark.parametrize("text", ["RIP431662859257118720", "431662859257118720"])
    async def test_a_megam_id_or_a_bare_decimal(self, client: Client, text: str) -> None:
        resp = await client.get(f"/decode/{text}")
        assert resp.status == 200
        assert await resp.json() == {
            "id": 431662859257118720,
            "id_str": "431662859257118720",
            "prefix": "RIP" if text.startswith("RIP") else None,
            "timestamp_ms": 1391751420212,
            "time": "2014-02-07T05:37:00.212+00:00",
            "datacenter_id": 0,
            "worker_id": 0,
            "sequence": 0,
        }

    @pytest.mark.parametrize("text", ["QQQ123", "12x", "99999999999999999999"])
    async def test_what_is_not_an_id(self, client: Client, text: str) -> None:
        resp = await client.get(f"/decode/{text}")
        assert resp.status == 400
        assert (await resp.json())["error"]


class TestWhenNoIdCanBeIssued:
    async def test_a_clock_far_behind_is_refused_with_503_and_counted(
        self, client: Client, clock: ManualClock
    ) -> None:
        assert (await client.get("/id")).status == 200
        clock.advance(-10_000)
        for path in ("/id", "/ids?count=3"):
            resp = await client.get(path)
            assert resp.status == 503
            assert resp.headers["Retry-After"] == "1"
            assert "clock moved backwards by 10000 ms" in (await resp.json())["error"]
        metrics = await (await client.get("/metrics")).text()
        assert metric(metrics, "megam_uid_clock_backwards_refusals_total") == 2
        assert metric(metrics, "megam_uid_clock_backwards_max_ms") == 10_000

    async def test_without_a_lease_ids_and_health_say_unavailable(
        self, client: Client, generator: Generator
    ) -> None:
        assert (await client.get("/healthz")).status == 200
        generator.revoke("lost the lease on rabbitmq queue uid.lease.2.6")
        resp = await client.get("/id")
        assert resp.status == 503
        assert "lost the lease" in (await resp.json())["error"]
        health = await client.get("/healthz")
        assert health.status == 503
        assert (await health.json())["reason"] == "lost the lease on rabbitmq queue uid.lease.2.6"


class TestHealthAndMetrics:
    async def test_health_names_the_worker(self, client: Client) -> None:
        resp = await client.get("/healthz")
        assert await resp.json() == {
            "status": "ok",
            "serving": True,
            "worker_id": 6,
            "datacenter_id": 2,
            "lease": None,
            "reason": None,
        }

    async def test_metrics_count_ids_waits_and_agents(
        self, client: Client, clock: ManualClock
    ) -> None:
        await client.get("/id", params={"agent": "gateway"})
        await client.get("/ids", params={"count": "4095", "agent": "herk"})
        pending = asyncio.create_task(client.get("/id", params={"agent": "gateway"}))
        await asyncio.sleep(0.02)  # it waits: the millisecond is used up
        assert not pending.done()
        clock.advance(1)
        assert (await asyncio.wait_for(pending, 5)).status == 200
        text = await (await client.get("/metrics")).text()
        assert metric(text, "megam_uid_ids_issued_total") == 4097
        assert metric(text, "megam_uid_sequence_waits_total") >= 1
        assert metric(text, 'megam_uid_agent_ids_total{agent="herk"}') == 4095
        assert metric(text, 'megam_uid_agent_requests_total{agent="gateway"}') == 2
        assert metric(text, 'megam_uid_serving{datacenter_id="2",worker_id="6"}') == 1

    async def test_agent_labels_are_bounded(
        self, aiohttp_client: MakeClient, generator: Generator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("uid.metrics.MAX_AGENTS", 2)
        client = await aiohttp_client(create_app(generator))
        for agent in ("a", "b", "c", "d"):
            await client.get("/id", params={"agent": agent})
        text = await (await client.get("/metrics")).text()
        assert metric(text, 'megam_uid_agent_requests_total{agent="other"}') == 2
        assert 'agent="c"' not in text
