"""``GET /v1/openapi.json``: the API described by itself (open, no signature needed)."""

from __future__ import annotations

from aiohttp import web

from gateway import envelope, openapi

routes = web.RouteTableDef()


@routes.get("/v1/openapi.json")
async def openapi_document(request: web.Request) -> web.Response:
    return envelope.json(openapi.document(request.app))
