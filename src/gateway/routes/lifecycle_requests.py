"""App and bolt lifecycle requests (Megam's appreqs/boltreqs: start, stop, restart, build).

Stored and listed per node, with the state ``stored``: herk has no job types for app lifecycle
in v1, so nothing is published (the original published ``{"Id", "Action", "Args"}`` per node to
a queue nothing in this system reads). When herk gains them, these become jobs like the others.
"""

from __future__ import annotations

from aiohttp import web

from gateway import bodies, documents, envelope
from gateway.errors import NotFound
from gateway.schemas import AppReqInput, BoltReqInput, LifecycleRequestInput
from gateway.services import caller, services

routes = web.RouteTableDef()
NOT_RUN = "stored; herk runs no app lifecycle jobs in v1, so nothing is published"


async def _create(
    request: web.Request, kind: str, kind_input: type[LifecycleRequestInput], defns: str
) -> web.Response:
    svc = services(request)
    account = caller(request)
    body = await bodies.parse(request, kind_input, kind)
    node = await documents.live_node(svc, account.id, body.node_name)
    defns_id = getattr(body, f"{defns}_id")
    if defns_id:
        found = await svc.store.document(account.id, defns, defns_id)
        if found is None or found.node_id != node.id:
            raise NotFound(f"node {node.name} has no {defns} {defns_id}")
    fields = {
        f"{defns}_id": defns_id,
        "req_type": body.req_type,
        "lc_apply": body.lc_apply,
        "lc_additional": body.lc_additional,
        "lc_when": body.lc_when,
        "state": "stored",
        "reason": NOT_RUN,
    }
    document = await documents.new(svc, kind, account.id, fields, node=node)
    await svc.store.add_document(document)
    return envelope.created(
        documents.created(document, f"{body.req_type} request {document.id} stored", NOT_RUN)
    )


async def _of_node(request: web.Request, kind: str) -> web.Response:
    svc = services(request)
    account = caller(request)
    node = await documents.node_by_id(svc, account.id, request.match_info["node_id"])
    found = await svc.store.documents(account.id, kind, node_id=node.id)
    return envelope.json(documents.collection(kind, found))


@routes.post("/v1/appreqs/content")
async def create_appreq(request: web.Request) -> web.Response:
    return await _create(request, "appreq", AppReqInput, "appdefns")


@routes.get("/v1/appreqs/{node_id}")
async def node_appreqs(request: web.Request) -> web.Response:
    return await _of_node(request, "appreq")


@routes.post("/v1/boltreqs/content")
async def create_boltreq(request: web.Request) -> web.Response:
    return await _create(request, "boltreq", BoltReqInput, "boltdefns")


@routes.get("/v1/boltreqs/{node_id}")
async def node_boltreqs(request: web.Request) -> web.Response:
    return await _of_node(request, "boltreq")
