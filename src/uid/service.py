"""The uid HTTP API (aiohttp): ids one at a time or in batches, decoding, health and metrics.

``GET /id?agent=A`` → ``{"id": 123, "id_str": "123"}``
``GET /ids?count=N&agent=A`` (1 ≤ N ≤ ``MAX_BATCH``) → ``{"ids": [...], "ids_str": [...]}``
``GET /decode/<id>`` (``RIP431…`` or bare decimal) → the id's fields
``GET /healthz`` → 200 while a lease is held, else 503; ``GET /metrics`` → Prometheus text

Ids are given as strings too because JavaScript numbers lose precision above 2**53. Errors are
``{"error": "..."}`` with 400 (bad input) or 503 (no id can be issued now, with Retry-After).
No middleware: a single id costs about 25 µs of server time and any extra layer shows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, NoReturn

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from megam import ids
from megam.ids import MAX_BATCH
from megam.snowflake import Generator, IdUnavailable, decode
from uid import render
from uid.metrics import AgentCounters, GeneratorCollector

DEFAULT_AGENT: Final = "anonymous"
MAX_AGENT_LENGTH: Final = 64
_AGENT: Final = re.compile(r"[a-zA-Z][a-zA-Z\-0-9]*")  # the original's InvalidUserAgentError rule
_JSON: Final = "application/json"

Status = Callable[[], dict[str, Any]]


def create_app(
    generator: Generator,
    *,
    status: Status | None = None,
    max_batch: int = MAX_BATCH,
    registry: CollectorRegistry | None = None,
) -> web.Application:
    """The app serving ``generator``; ``status`` reports the lease (default: the generator's)."""
    registry = registry or CollectorRegistry()
    api = _Api(generator, status or (lambda: generator_status(generator)), max_batch, registry)
    app = web.Application()
    app.router.add_get("/id", api.one_id)
    app.router.add_get("/ids", api.batch)
    app.router.add_get("/decode/{id}", api.decode)
    app.router.add_get("/healthz", api.health)
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    return app


def generator_status(generator: Generator, lease: str | None = None) -> dict[str, Any]:
    return {
        "serving": generator.serving,
        "worker_id": generator.worker_id,
        "datacenter_id": generator.datacenter_id,
        "lease": lease,
        "reason": generator.revoked_reason,
    }


class _Api:
    def __init__(
        self, generator: Generator, status: Status, max_batch: int, registry: CollectorRegistry
    ) -> None:
        self._generator = generator
        self._status = status
        self._max_batch = max_batch
        self._agents = AgentCounters(registry)
        registry.register(GeneratorCollector(generator, status))

    async def one_id(self, request: web.Request) -> web.Response:
        agent = _agent(request)
        try:
            value = await self._generator.next_id_async()
        except IdUnavailable as exc:
            _unavailable(exc)
        self._agents.count(agent, 1)
        return web.Response(body=render.single_body(value), content_type=_JSON)

    async def batch(self, request: web.Request) -> web.Response:
        agent = _agent(request)
        count = self._count(request)
        try:
            runs = await self._generator.take_async(count)
        except IdUnavailable as exc:
            _unavailable(exc)
        self._agents.count(agent, count)
        return web.Response(body=render.batch_body(runs), content_type=_JSON)

    async def decode(self, request: web.Request) -> web.Response:
        text = request.match_info["id"]
        try:
            parsed = ids.parse(text)
        except ValueError as exc:
            _bad_request(str(exc))
        fields = decode(parsed.value)
        return _json(
            {
                "id": parsed.value,
                "id_str": str(parsed.value),
                "prefix": parsed.prefix,
                "timestamp_ms": fields.timestamp_ms,
                "time": fields.time.isoformat(timespec="milliseconds"),
                "datacenter_id": fields.datacenter_id,
                "worker_id": fields.worker_id,
                "sequence": fields.sequence,
            }
        )

    async def health(self, _request: web.Request) -> web.Response:
        status = self._status()
        serving = status["serving"]
        body = {"status": "ok" if serving else "unavailable", **status}
        return _json(body, status=200 if serving else 503)

    def _count(self, request: web.Request) -> int:
        raw = request.query.get("count")
        if raw is None:
            _bad_request(f"count is required: /ids?count=N with N in 1..{self._max_batch}")
        digits = len(raw) <= 9 and raw.isascii() and raw.isdigit()
        if not digits or not 1 <= int(raw) <= self._max_batch:
            _bad_request(f"count must be an integer in 1..{self._max_batch}, got {raw[:20]!r}")
        return int(raw)


def _agent(request: web.Request) -> str:
    agent = request.query.get("agent", DEFAULT_AGENT)
    if len(agent) > MAX_AGENT_LENGTH or _AGENT.fullmatch(agent) is None:
        _bad_request(
            f"agent must match [a-zA-Z][a-zA-Z-0-9]* and be at most {MAX_AGENT_LENGTH} "
            f"characters, got {agent[:MAX_AGENT_LENGTH]!r}"
        )
    return agent


def _json(payload: dict[str, Any], *, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type=_JSON)


def _bad_request(message: str) -> NoReturn:
    raise web.HTTPBadRequest(text=_error_text(message), content_type=_JSON)


def _unavailable(exc: IdUnavailable) -> NoReturn:
    raise web.HTTPServiceUnavailable(
        text=_error_text(str(exc)), content_type=_JSON, headers={"Retry-After": "1"}
    )


def _error_text(message: str) -> str:
    return orjson.dumps({"error": message}).decode()
