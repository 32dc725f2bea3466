"""Per-request plumbing: a request id in every log line, errors as ``Megam::Error``, metrics."""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Final

import orjson
import structlog
from aiohttp import HttpVersion11, web

from gateway import envelope, metrics
from gateway.errors import AlreadyExists, ApiError, Unavailable
from gateway.services import REQUEST_ID
from gateway.store import Conflict, StoreError
from megam import log

logger = log.get("gateway.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CLIENT_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HTTP_MESSAGES: Final = {
    404: ("no such route", "GET /v1/openapi.json lists the routes"),
    405: ("this route does not take that method", "writes are POST …/content"),
    413: ("the request body is too large", ""),
}


_PROCESS: Final = secrets.token_hex(8)
_COUNTER = itertools.count(1)


def _next_request_id() -> str:
    # unique across processes without a urandom call per request (which costs ~30 µs here)
    return f"{_PROCESS}{next(_COUNTER):016x}"


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    offered = request.headers.get("X-Request-Id", "")
    rid = offered if CLIENT_REQUEST_ID.fullmatch(offered) else _next_request_id()
    request[REQUEST_ID] = rid
    started = time.perf_counter()
    # bind/reset rather than the bound_contextvars context manager: same effect, less per request
    tokens = structlog.contextvars.bind_contextvars(request_id=rid)
    try:
        response = await _answer(request, handler)
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
    if not response.prepared:
        response.headers["X-Request-Id"] = rid
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    metrics.observe_http(request.method, route, response.status, time.perf_counter() - started)
    return response


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as err:
        return _error(err)
    except Conflict as exc:
        return _error(AlreadyExists(str(exc)))
    except StoreError as exc:
        logger.warning("store.unavailable", error=str(exc))
        return _error(Unavailable("the store is unavailable", more=str(exc)))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        msg, more = _HTTP_MESSAGES.get(exc.status, (exc.reason, ""))
        return _error(ApiError(msg, more, status=exc.status))
    except Exception:
        logger.exception("http.unhandled", path=request.path, method=request.method)
        return _error(
            ApiError(
                "the gateway failed on this request",
                more=f"quote request id {request[REQUEST_ID]} when you report it",
            )
        )


RETRY_AFTER_SECONDS: Final = "1"
"""A 503 is a backend that cannot serve right now (nothing was kept): say when to try again."""


async def expect_handler(request: web.Request) -> None:
    """``Expect`` is answered before any middleware runs; aiohttp's own refusal echoes the
    header's value, which fails (a 500) when the value is not UTF-8."""
    if request.version != HttpVersion11:
        return  # HTTP/1.0 has no Expect: ignored, as aiohttp does
    if request.headers.get("Expect", "").lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer proper has not started yet
        return
    err = ApiError(
        "the Expect header can only be 100-continue", more="leave it out", status=417
    )
    raise web.HTTPExpectationFailed(
        text=orjson.dumps(envelope.error(err)).decode(), content_type="application/json"
    )


def _error(err: ApiError) -> web.Response:
    response = envelope.json(envelope.error(err), err.status)
    if err.status == 503:
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response
