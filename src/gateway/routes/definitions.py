"""App and bolt definitions of a node (Megam's appdefns/boltdefns): runtime settings kept for
the node. A bolt's api key is encrypted at rest and shown only as ``has_apikey``."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from aiohttp import web

from gateway import bodies, documents, envelope
from gateway.errors import NotFound
from gateway.schemas import (
    AppDefns,
    AppDefnsInput,
    AppDefnsUpdate,
    BoltDefnsInput,
    BoltDefnsUpdate,
)
from gateway.services import caller, services

routes = web.RouteTableDef()


def _fields(defns: AppDefns) -> tuple[dict[str, Any], str]:
    """The definition's shown fields, and its secret (a bolt's api key)."""
    fields = msgspec.structs.asdict(defns)
    secret = fields.pop("apikey", "")
    return fields, secret


async def _create(request: web.Request, kind: str, kind_input: type, attr: str) -> web.Response:
    svc = services(request)
    account = caller(request)
    body = await bodies.parse(request, kind_input, kind)
    node = await documents.live_node(svc, account.id, body.node_name)
    fields, secret = _fields(getattr(body, attr))
    document = await documents.new(svc, kind, account.id, fields, node=node, secret=secret)
    await svc.store.add_document(document)
    more = f"name it in POST /v1/nodes/update as {kind}id to make it the node's current one"
    return envelope.created(documents.created(document, f"{kind} {document.id} created", more))


async def _update(request: web.Request, kind: str, kind_input: type, attr: str) -> web.Response:
    svc = services(request)
    account = caller(request)
    body = await bodies.parse(request, kind_input, kind)
    node = await documents.live_node(svc, account.id, body.node_name)
    current = await svc.store.document(account.id, kind, body.id)
    if current is None or current.node_id != node.id:
        raise NotFound(f"node {node.name} has no {kind} {body.id}")
    fields, secret = _fields(getattr(body, attr))
    changed = msgspec.structs.replace(
        current,
        body={"node_id": node.id, "node_name": node.name, **fields},
        secret_encrypted=svc.sealer.encrypt(secret) if secret else current.secret_encrypted,
        updated_at=time.time(),
    )
    await svc.store.replace_document(changed)
    return envelope.created([envelope.message(201, f"{kind} {body.id} updated", "", id=body.id)])


async def _of_node(request: web.Request, kind: str) -> list[Any]:
    svc = services(request)
    account = caller(request)
    node = await documents.node_by_id(svc, account.id, request.match_info["node_id"])
    return await svc.store.documents(account.id, kind, node_id=node.id)


@routes.post("/v1/appdefns/content")
async def create_appdefns(request: web.Request) -> web.Response:
    return await _create(request, "appdefns", AppDefnsInput, "appdefns")


@routes.post("/v1/appdefns/update")
async def update_appdefns(request: web.Request) -> web.Response:
    return await _update(request, "appdefns", AppDefnsUpdate, "appdefns")


@routes.get("/v1/appdefns")
async def list_appdefns(request: web.Request) -> web.Response:
    found = await services(request).store.documents(caller(request).id, "appdefns")
    return envelope.json(documents.collection("appdefns", found))


@routes.get("/v1/appdefns/{node_id}")
async def node_appdefns(request: web.Request) -> web.Response:
    return envelope.json(documents.collection("appdefns", await _of_node(request, "appdefns")))


@routes.get("/v1/appdefns/{node_id}/{id}")
async def show_appdefns(request: web.Request) -> web.Response:
    key = request.match_info["id"]
    found = [d for d in await _of_node(request, "appdefns") if d.id == key]
    if not found:
        raise NotFound(f"that node has no appdefns {key}")
    return envelope.json(documents.view(found[0]))


@routes.post("/v1/boltdefns/content")
async def create_boltdefns(request: web.Request) -> web.Response:
    return await _create(request, "boltdefns", BoltDefnsInput, "boltdefns")


@routes.post("/v1/boltdefns/update")
async def update_boltdefns(request: web.Request) -> web.Response:
    return await _update(request, "boltdefns", BoltDefnsUpdate, "boltdefns")


@routes.get("/v1/boltdefns/{node_id}")
async def node_boltdefns(request: web.Request) -> web.Response:
    return envelope.json(documents.collection("boltdefns", await _of_node(request, "boltdefns")))
