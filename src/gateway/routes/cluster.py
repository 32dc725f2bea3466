"""Operating the cluster (admins only, see ``gateway.admin``): herk nodes from their heartbeats,
queue depth and dead letters, draining and scaling a node, re-queueing or discarding dead jobs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from gateway import bodies, control, dead_letters, envelope, views
from gateway.admin import require_admin
from gateway.errors import BadRequest, NotFound, Unavailable
from gateway.schemas import DeadLetterSelection, ScaleInput
from gateway.services import services
from megam import log, wire
from megam.bus import BusError

logger = log.get("gateway.cluster")
routes = web.RouteTableDef()


@routes.get("/v1/cluster")
async def cluster_status(request: web.Request) -> web.Response:
    require_admin(request)
    snapshot = await services(request).cluster.snapshot(fresh=True)
    nodes = [views.herk_node(h, snapshot.taken_at, snapshot.is_alive(h)) for h in snapshot.herks]
    answer = envelope.collection("HerkNode", nodes)
    answer |= {
        "queue_depth": snapshot.queue_depth,
        "dead_letters": snapshot.dead_letters,
        "alive": len(snapshot.alive),
    }
    return envelope.json(answer)


@routes.post("/v1/cluster/{herk}/drain")
async def drain(request: web.Request) -> web.Response:
    admin = require_admin(request)
    herk = await _known_herk(request)
    await _send(request, control.drain(admin.email), herk)
    return _accepted(
        f"herk node {herk} is asked to drain", "it finishes in-flight jobs and takes no more"
    )


@routes.post("/v1/cluster/{herk}/scale")
async def scale(request: web.Request) -> web.Response:
    admin = require_admin(request)
    body = await bodies.parse(request, ScaleInput, "scale request")
    herk = await _known_herk(request)
    await _send(request, control.scale(body.workers, admin.email), herk)
    return _accepted(
        f"herk node {herk} is asked to run {body.workers} workers",
        "its next heartbeat (GET /v1/cluster) shows the new size",
    )


@routes.get("/v1/cluster/deadletters")
async def list_dead_letters(request: web.Request) -> web.Response:
    require_admin(request)
    limit = _limit(request)
    async with _taken(request, limit) as letters:
        items = [letter.view() for letter in letters]
    return envelope.json(envelope.collection("DeadLetter", items))


@routes.post("/v1/cluster/deadletters/requeue")
async def requeue_dead_letters(request: web.Request) -> web.Response:
    admin = require_admin(request)
    selection = await _selection(request)
    done, refused = [], []
    async with _taken(request, selection.limit) as letters:
        for letter in dead_letters.select(letters, None if selection.all else selection.ids):
            if letter.request is None:
                refused.append(letter.key)
                continue
            await dead_letters.requeue(services(request).bus, letter, admin.email)
            done.append(letter.key)
    logger.info("dead_letters.requeued", ids=done, by=admin.email)
    return _result("requeued", done, refused)


@routes.post("/v1/cluster/deadletters/discard")
async def discard_dead_letters(request: web.Request) -> web.Response:
    admin = require_admin(request)
    selection = await _selection(request)
    done: list[str] = []
    async with _taken(request, selection.limit) as letters:
        for letter in dead_letters.select(letters, None if selection.all else selection.ids):
            await dead_letters.discard(letter)
            done.append(letter.key)
    logger.info("dead_letters.discarded", ids=done, by=admin.email)
    return _result("discarded", done, [])


async def _known_herk(request: web.Request) -> str:
    name = request.match_info["herk"]
    snapshot = await services(request).cluster.snapshot(fresh=True)
    if snapshot.herk(name) is None:
        raise NotFound(f"no herk node named {name} has sent a heartbeat", more="GET /v1/cluster")
    return name


async def _send(request: web.Request, command: wire.ControlCommand, herk: str) -> None:
    try:
        await control.send(services(request).bus, command, herk)
    except BusError as exc:
        raise Unavailable(
            f"herk node {herk} is not listening on the control exchange", more=str(exc)
        ) from None
    logger.info("cluster.command", command=command.command, herk=herk, by=command.requested_by)


@contextlib.asynccontextmanager
async def _taken(request: web.Request, limit: int) -> AsyncIterator[list[dead_letters.DeadLetter]]:
    svc = services(request)
    try:
        async with svc.dead_letter_turns, dead_letters.taken(svc.bus, limit) as letters:
            yield letters
    except BusError as exc:
        raise Unavailable("the broker cannot serve the dead letters", more=str(exc)) from None


async def _selection(request: web.Request) -> DeadLetterSelection:
    selection = await bodies.parse(request, DeadLetterSelection, "dead-letter selection")
    if not selection.all and not selection.ids:
        raise BadRequest("name the dead letters", more='send {"ids": [...]} or {"all": true}')
    return selection


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise BadRequest("limit must be a whole number from 1 to 1000", more=f"got {raw!r}")
    return int(raw)


def _accepted(msg: str, more: str) -> web.Response:
    return envelope.json([envelope.message(202, msg, more)], status=202)


def _result(action: str, done: list[str], refused: list[str]) -> web.Response:
    more = f"{len(done)} {action}"
    if refused:
        more += f"; not job requests, so only discardable: {', '.join(refused)}"
    return envelope.json([envelope.message(200, f"dead letters {action}", more, ids=done)])
