"""``POST /v1/nodes/update``: Megam's node update (status, name, current app/bolt definitions).

An empty string keeps the old value. A rename waits until the node's jobs have ended (herk's
events name the node). The definitions named must belong to the node.
"""

from __future__ import annotations

import time

from aiohttp import web

from gateway import bodies, envelope
from gateway.errors import AlreadyExists, NotFound
from gateway.schemas import NodeUpdateInput
from gateway.services import Services, caller, services
from gateway.store import Conflict, NotStored
from gateway.store.records import NodeChange

routes = web.RouteTableDef()


@routes.post("/v1/nodes/update")
async def update_node(request: web.Request) -> web.Response:
    svc = services(request)
    account = caller(request)
    body = await bodies.parse(request, NodeUpdateInput, "node update")
    node = await svc.store.node(account.id, body.node_name)
    if node is None:
        raise NotFound(f"you have no node named {body.node_name}")
    for kind, key in (("appdefns", body.appdefnsid), ("boltdefns", body.boltdefnsid)):
        await _must_belong(svc, account.id, kind, key, node.id, node.name)
    change = NodeChange(
        status=body.status,
        new_name=body.new_node_name,
        appdefnsid=body.appdefnsid,
        boltdefnsid=body.boltdefnsid,
    )
    try:
        updated = await svc.store.update_node(account.id, body.node_name, change, time.time())
    except NotStored as exc:
        raise NotFound(str(exc)) from None
    except Conflict as exc:
        raise AlreadyExists(str(exc)) from None
    return envelope.created(
        [envelope.message(201, f"node {updated.name} updated", f"status {updated.status}")]
    )


async def _must_belong(
    svc: Services, account_id: str, kind: str, key: str, node_id: str, node_name: str
) -> None:
    if not key:
        return
    found = await svc.store.document(account_id, kind, key)
    if found is None or found.node_id != node_id:
        raise NotFound(f"node {node_name} has no {kind} {key}")
