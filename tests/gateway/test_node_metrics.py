"""A node's metric series over the API: raw samples for recent spans, rolled-up points for
long ones, as Ganglia's graphs showed the last hour, day, week and year."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.options import GatewayOptions
from gateway.routes.node_metrics import auto_step
from gateway.store.records import Retention
from megam import topology, wire
from tests.gateway.conftest import Api, Gateway, Herk, poll_until

DAY = 86400.0


async def sampled_node(gateway: Gateway, herk: Herk, job_of: Any, ages: list[float]) -> Api:
    """A tenant whose node ``web.local`` reported ``cpu`` = 1, 2, 3 … at each of ``ages``
    seconds ago; returns once the gateway stored every sample."""
    api = await gateway.tenant()
    [job_id] = await api.launch("web.local")
    job = await job_of(api, job_id)
    now = time.time()
    for value, age in enumerate(ages, start=1):
        event = wire.MetricEvent(
            node="web.local", account=job["account"], samples={"cpu": value}, at=now - age
        )
        await herk.publish(topology.metric_key("web.local"), wire.encode(event))

    async def all_stored() -> bool:
        raw = await api.ok("/v1/nodes/web.local/metrics", step="raw")
        return len(raw["results"]) == len(ages)

    await poll_until(all_stored)
    return api


async def series(api: Api, **query: Any) -> list[dict[str, Any]]:
    return (await api.ok("/v1/nodes/web.local/metrics", **query))["results"]


class TestMetricSeries:
    async def test_the_latest_raw_samples_come_without_a_span(
        self, gateway: Gateway, herk: Herk, job_of: Any
    ) -> None:
        api = await sampled_node(gateway, herk, job_of, [120.0, 60.0])
        points = await series(api)
        assert [(p["name"], p["value"], p["step"]) for p in points] == [
            ("cpu", 1.0, 0),
            ("cpu", 2.0, 0),
        ]
        assert "low" not in points[0]

    async def test_long_spans_come_as_rolled_up_points_with_low_and_high(
        self, gateway_with: Callable[..., Awaitable[Gateway]], herk: Herk, job_of: Any
    ) -> None:
        gateway = await gateway_with(rollup_interval_seconds=0.05)
        api = await sampled_node(gateway, herk, job_of, [3 * DAY, 3 * DAY - 1, 60 * DAY])
        since = time.time() - 4 * DAY

        async def rolled_up() -> list[dict[str, Any]]:
            return await series(api, since=since)

        points = await poll_until(rolled_up)  # auto: four days are 5-minute points
        assert [(p["value"], p["low"], p["high"], p["count"], p["step"]) for p in points] == [
            (1.5, 1.0, 2.0, 2, 300)
        ]
        year = await series(api, since=time.time() - 365 * DAY)
        assert [(p["value"], p["count"], p["step"]) for p in year] == [
            (3.0, 1, 3600),
            (1.5, 2, 3600),
        ]
        recent = await series(api, since=time.time() - 3600)
        assert recent == []  # the last hour, raw: nothing reported in it

    async def test_a_resolution_can_be_asked_for_and_a_limit_keeps_the_newest(
        self, gateway_with: Callable[..., Awaitable[Gateway]], herk: Herk, job_of: Any
    ) -> None:
        gateway = await gateway_with(rollup_interval_seconds=0.05)
        api = await sampled_node(gateway, herk, job_of, [7200.0, 600.0])

        async def rolled_up() -> list[dict[str, Any]]:
            return await series(api, step=300)

        assert [p["value"] for p in await poll_until(rolled_up)] == [1.0, 2.0]
        assert [p["value"] for p in await series(api, step=300, limit=1)] == [2.0]
        assert [p["value"] for p in await series(api, step="raw", limit=1)] == [2.0]

    async def test_a_bad_step_or_limit_is_refused_in_words(
        self, gateway: Gateway, herk: Herk, job_of: Any
    ) -> None:
        api = await sampled_node(gateway, herk, job_of, [60.0])
        for query, words in (
            ({"step": 60}, "step must be one of auto, raw, 300, 3600"),
            ({"limit": 0}, "limit must be between 1 and"),
            ({"since": "soon"}, "since must be seconds since the epoch"),
        ):
            response = await api.get("/v1/nodes/web.local/metrics", **query)
            assert response.status == 400
            assert words in (await response.json())["msg"]


class TestMetricRetentionSettings:
    def test_operators_set_how_long_each_resolution_is_kept(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("MEGAM_GATEWAY_METRIC_RETENTION_DAYS", "1,10,100")
        monkeypatch.setenv("MEGAM_GATEWAY_ROLLUP_INTERVAL", "30")
        options = GatewayOptions.from_env()
        assert options.retention.metric_seconds == (DAY, 10 * DAY, 100 * DAY)
        assert options.rollup_interval_seconds == 30.0

    @pytest.mark.parametrize("raw", ["7", "1,2", "2,1,3", "0,1,2", "a,b,c"])
    def test_a_retention_that_makes_no_sense_is_refused_in_words(
        self, monkeypatch: pytest.MonkeyPatch, raw: str
    ) -> None:
        monkeypatch.setenv("MEGAM_GATEWAY_METRIC_RETENTION_DAYS", raw)
        with pytest.raises(ValueError, match="three growing numbers of days"):
            GatewayOptions.from_env()

    def test_the_default_resolution_follows_the_span_and_what_is_kept(self) -> None:
        kept = Retention(metric_seconds=(DAY, 10 * DAY, 100 * DAY))
        now = 1_000_000_000.0
        assert auto_step(None, now, kept) == 0  # the latest raw samples
        assert auto_step(now - 3600, now, kept) == 0
        assert auto_step(now - 7 * 3600, now, kept) == 300  # longer than a raw chart
        assert auto_step(now - 2 * DAY, now, kept) == 300  # raw samples are gone by then
        assert auto_step(now - 12 * DAY, now, kept) == 3600  # so are 5-minute points
