"""Open operational routes: liveness, readiness (store and broker) and Prometheus metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from gateway import envelope
from gateway.services import services
from gateway.store import StoreError

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return envelope.json({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    svc = services(request)
    checks: dict[str, str] = {}
    try:
        await svc.store.ping()
        checks["store"] = "ok"
    except StoreError as exc:
        checks["store"] = f"unavailable: {exc}"
    checks["bus"] = "ok" if svc.bus.connected else "unavailable: not connected to the broker"
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if ready else "unavailable", **checks}
    return envelope.json(body, 200 if ready else 503)


routes.get("/metrics")(make_aiohttp_handler())
