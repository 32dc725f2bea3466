"""Prometheus metrics of one uid service, in a registry of its own.

The generator keeps plain counters (no metric call on the hot path); a collector reads them at
scrape time. Agent names are client-chosen, so only the first ``MAX_AGENTS`` get their own
label; later ones are counted under ``other`` to keep the series count bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from megam.snowflake import Generator

MAX_AGENTS: Final = 1000
OTHER_AGENTS: Final = "other"


class GeneratorCollector(Collector):
    def __init__(self, generator: Generator, status: Callable[[], dict[str, Any]]) -> None:
        self._generator = generator
        self._status = status

    def collect(self) -> Iterator[Metric]:
        generator = self._generator
        yield CounterMetricFamily(
            "megam_uid_ids_issued", "Ids issued by this service.", value=generator.ids_issued
        )
        yield CounterMetricFamily(
            "megam_uid_sequence_waits",
            "Times a millisecond's 4096 ids ran out and a request waited for the next one.",
            value=generator.sequence_waits,
        )
        yield CounterMetricFamily(
            "megam_uid_clock_waits",
            "Times the clock was a little behind and issuing waited for it.",
            value=generator.clock_waits,
        )
        yield CounterMetricFamily(
            "megam_uid_clock_backwards_refusals",
            "Requests refused because the clock went back further than the tolerance.",
            value=generator.clock_refusals,
        )
        yield GaugeMetricFamily(
            "megam_uid_clock_backwards_max_ms",
            "The furthest the clock has been seen going back, in milliseconds.",
            value=generator.max_backwards_ms,
        )
        status = self._status()
        serving = GaugeMetricFamily(
            "megam_uid_serving",
            "1 while a worker-id lease is held and ids are issued, else 0.",
            labels=["datacenter_id", "worker_id"],
        )
        serving.add_metric(
            [str(generator.datacenter_id), str(generator.worker_id)],
            1.0 if status["serving"] else 0.0,
        )
        yield serving


class AgentCounters:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter(
            "megam_uid_agent_requests", "Requests per agent.", ["agent"], registry=registry
        )
        self._ids = Counter(
            "megam_uid_agent_ids", "Ids issued per agent.", ["agent"], registry=registry
        )
        self._children: dict[str, tuple[Any, Any]] = {}

    def count(self, agent: str, ids: int) -> None:
        children = self._children.get(agent) or self._add(agent)
        children[0].inc()
        children[1].inc(ids)

    def _add(self, agent: str) -> tuple[Any, Any]:
        label = agent if len(self._children) < MAX_AGENTS else OTHER_AGENTS
        children = (self._requests.labels(label), self._ids.labels(label))
        if label == agent:
            self._children[agent] = children
        return children
