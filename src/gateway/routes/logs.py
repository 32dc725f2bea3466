"""A node's log lines: a page or tail over HTTP, and a live tail over SSE or a WebSocket.

The cursor is the store's line id. ``after=<cursor>`` (or the ``Last-Event-ID`` header an
EventSource sends when it reconnects) continues exactly after the last line a client saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any, Final

import orjson
from aiohttp import web

from gateway import envelope, metrics, query, views
from gateway.errors import BadRequest
from gateway.routes.nodes import node_of_caller
from gateway.services import request_id, services
from gateway.store.records import LogLine
from gateway.tail import Follow, TailItem

routes = web.RouteTableDef()

MAX_CURSOR: Final = 2**63 - 1
RETRY_MS: Final = 2000


@routes.get("/v1/nodes/{name}/logs")
async def node_logs(request: web.Request) -> web.Response:
    svc = services(request)
    node = await node_of_caller(request)
    options = svc.options
    after = query.integer(request, "after", default=None, low=0, high=MAX_CURSOR)
    tail = query.integer(
        request, "tail", default=options.tail_default, low=0, high=options.tail_max
    )
    limit = query.integer(request, "limit", default=options.page_max, low=1, high=options.page_max)
    job_id = query.job_id(request)
    if after is not None:
        lines = await svc.store.log_lines(
            node.account_id, node.id, after=after, job_id=job_id, limit=limit or 1
        )
        cursor = lines[-1].id if lines else after
    else:
        # tail=0 reads one line anyway: its id is the cursor to continue from
        lines = await svc.store.log_lines(
            node.account_id, node.id, tail=max(tail or 0, 1), job_id=job_id, limit=max(tail or 0, 1)
        )
        cursor = lines[-1].id if lines else 0
        lines = lines if tail else []
    body = envelope.collection("LogLine", map(views.log_line, lines))
    return envelope.json({**body, "cursor": cursor})


@routes.get("/v1/nodes/{name}/logs/stream")
async def stream_node_logs(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    node = await node_of_caller(request)
    options = svc.options
    after = _resume_point(request)
    tail = query.integer(
        request, "tail", default=options.tail_default, low=0, high=options.tail_max
    )
    follow = Follow(svc.store, svc.notifier, node, query.job_id(request), options.keepalive_seconds)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # proxies must not hold events back
            "X-Request-Id": request_id(request),
        }
    )
    await response.prepare(request)
    metrics.TAIL_FOLLOWERS.inc()
    try:
        await response.write(f"retry: {RETRY_MS}\n\n".encode())
        async for batch in follow.batches(after=after, tail=tail or 0):
            await response.write(b"".join(map(encode_event, batch)))
    except ConnectionResetError:
        pass  # the client went away; nothing to clean up but the gauge
    finally:
        metrics.TAIL_FOLLOWERS.dec()
    return response


@routes.get("/v1/nodes/{name}/logs/ws")
async def websocket_node_logs(request: web.Request) -> web.WebSocketResponse:
    """The live tail over a WebSocket: the same items as the SSE stream, as JSON messages."""
    svc = services(request)
    node = await node_of_caller(request)
    options = svc.options
    after = _resume_point(request)
    tail = query.integer(
        request, "tail", default=options.tail_default, low=0, high=options.tail_max
    )
    follow = Follow(svc.store, svc.notifier, node, query.job_id(request), options.keepalive_seconds)
    socket = web.WebSocketResponse(heartbeat=options.keepalive_seconds)
    await socket.prepare(request)
    metrics.TAIL_FOLLOWERS.inc()
    sender = asyncio.create_task(_send_tail(socket, follow, after, tail or 0))
    try:
        async for _ in socket:
            pass  # the client has nothing to say; this loop ends when it hangs up
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
            await sender
        metrics.TAIL_FOLLOWERS.dec()
    return socket


async def _send_tail(
    socket: web.WebSocketResponse, follow: Follow, after: int | None, tail: int
) -> None:
    async for batch in follow.batches(after=after, tail=tail):
        for item in batch:
            if item.kind != "keepalive":  # the WebSocket's own pings keep it alive
                await socket.send_str(orjson.dumps(socket_message(item)).decode())
    await socket.close()  # the gateway is shutting down


def socket_message(item: TailItem) -> dict[str, Any]:
    if item.kind == "status":
        return {
            "type": "status",
            "cursor": item.cursor,
            "status": envelope.obj("NodeStatus", item.status or {}),
        }
    assert item.line is not None
    return {"type": "line", "cursor": item.cursor, "line": views.log_line(item.line)}


def _resume_point(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID")
    if raw is None or raw.strip() == "":
        return query.integer(request, "after", default=None, low=0, high=MAX_CURSOR)
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Last-Event-ID must be a cursor (an integer), got {raw!r}") from None
    if not 0 <= value <= MAX_CURSOR:
        raise BadRequest(f"Last-Event-ID {value} is out of range")
    return value


def encode_event(item: TailItem) -> bytes:
    if item.kind == "keepalive":
        return b": keep-alive\n\n"
    if item.kind == "status":
        data = orjson.dumps(envelope.obj("NodeStatus", item.status or {}))
        return b"id: %d\nevent: status\ndata: %s\n\n" % (item.cursor, data)
    assert item.line is not None
    return _line_event(item.line)


@functools.lru_cache(maxsize=20_000)
def _line_event(line: LogLine) -> bytes:
    # Followers of one job share the LogLine objects of one store read (Notifier.shared_read):
    # each line is encoded once, not once per follower.
    return b"id: %d\ndata: %s\n\n" % (line.id, orjson.dumps(views.log_line(line)))
