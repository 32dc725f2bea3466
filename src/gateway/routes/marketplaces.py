"""The marketplace (seeded, the same for every account) and the addons an account puts on its
nodes. An addon is stored and shown; no job runs for it (herk has no addon job type in v1)."""

from __future__ import annotations

from aiohttp import web

from gateway import bodies, catalogue, documents, envelope, views
from gateway.errors import NotFound
from gateway.schemas import MarketplaceAddonInput
from gateway.services import caller, services

routes = web.RouteTableDef()


def _seeded(item: dict[str, object]) -> dict[str, object]:
    return envelope.obj("MarketPlace", {**item, "created_at": views.iso(catalogue.SEEDED_AT)})


@routes.get("/v1/marketplaces")
async def list_marketplaces(request: web.Request) -> web.Response:
    items = (_seeded(m) for m in catalogue.MARKETPLACES.values())
    return envelope.json(envelope.collection("MarketPlace", items))


@routes.get("/v1/marketplaces/{id}")
async def show_marketplace(request: web.Request) -> web.Response:
    key = request.match_info["id"]
    found = catalogue.MARKETPLACES.get(key) or next(
        (m for m in catalogue.MARKETPLACES.values() if m["id"] == key), None
    )
    if found is None:
        raise NotFound(f"no marketplace item {key}", more="GET /v1/marketplaces lists them")
    return envelope.json(_seeded(found))


@routes.post("/v1/marketplaceaddons/content")
async def create_addon(request: web.Request) -> web.Response:
    svc = services(request)
    account = caller(request)
    body = await bodies.parse(request, MarketplaceAddonInput, "marketplace addon")
    if body.marketplace_id not in catalogue.MARKETPLACES and not any(
        m["id"] == body.marketplace_id for m in catalogue.MARKETPLACES.values()
    ):
        raise NotFound(f"no marketplace item {body.marketplace_id}", more="GET /v1/marketplaces")
    node = await documents.live_node(svc, account.id, body.node_name)
    fields = {"marketplace_id": body.marketplace_id, "config": body.config}
    document = await documents.new(svc, "marketplaceaddon", account.id, fields, node=node)
    await svc.store.add_document(document)
    return envelope.created(
        documents.created(document, f"addon {body.marketplace_id} added to {node.name}", "")
    )


@routes.get("/v1/marketplaceaddons/{node_id}")
async def node_addons(request: web.Request) -> web.Response:
    svc = services(request)
    account = caller(request)
    node = await documents.node_by_id(svc, account.id, request.match_info["node_id"])
    found = await svc.store.documents(account.id, "marketplaceaddon", node_id=node.id)
    return envelope.json(documents.collection("marketplaceaddon", found))
