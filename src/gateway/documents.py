"""The simple v1 kinds kept as tenant documents: their id prefixes, how they are made and shown.

Secrets (an ssh private key, a bolt's api key) go into ``Document.secret_encrypted`` and are
shown only as ``has_…: true``.
"""

from __future__ import annotations

import time
from typing import Any, Final

from gateway import envelope, views
from gateway.errors import NotFound
from gateway.services import Services
from gateway.store.records import Document, Node

# kind -> (id prefix, Megam class name)
KINDS: Final = {
    "cloudtoolsetting": ("CTS", "CloudToolSetting"),
    "sshkey": ("SSH", "SshKey"),
    "marketplaceaddon": ("AON", "MarketPlaceAddons"),  # the original's name, plural
    "appdefns": ("ADF", "AppDefns"),
    "boltdefns": ("BDF", "BoltDefns"),
    "appreq": ("APR", "AppRequest"),
    "boltreq": ("BPR", "BoltRequest"),
}
SECRET_FLAGS: Final = {"sshkey": "has_private_key", "boltdefns": "has_apikey"}
NESTED: Final = frozenset({"appdefns", "boltdefns"})
"""Kinds whose fields the original client reads nested under the kind's name (here also flat)."""


async def new(
    svc: Services,
    kind: str,
    account_id: str,
    body: dict[str, Any],
    *,
    name: str | None = None,
    node: Node | None = None,
    secret: str = "",
) -> Document:
    prefix, _ = KINDS[kind]
    doc_id = await svc.new_id(prefix)
    now = time.time()
    if node is not None:
        body = {"node_id": node.id, "node_name": node.name, **body}
    return Document(
        kind=kind,
        id=doc_id,
        account_id=account_id,
        name=name or doc_id,
        node_id=node.id if node else "",
        body=body,
        secret_encrypted=svc.sealer.encrypt(secret) if secret else None,
        created_at=now,
        updated_at=now,
    )


def view(document: Document) -> dict[str, Any]:
    _, claz = KINDS[document.kind]
    fields: dict[str, Any] = {"id": document.id, "accounts_id": document.account_id}
    fields |= document.body
    if document.kind in NESTED:
        node_fields = ("node_id", "node_name")
        fields[document.kind] = {k: v for k, v in document.body.items() if k not in node_fields}
    flag = SECRET_FLAGS.get(document.kind)
    if flag:
        fields[flag] = document.secret_encrypted is not None
    fields["created_at"] = views.iso(document.created_at)
    fields["updated_at"] = views.iso(document.updated_at)
    return envelope.obj(claz, fields)


def collection(kind: str, documents: list[Document]) -> dict[str, Any]:
    _, claz = KINDS[kind]
    return envelope.collection(claz, map(view, documents))


def created(document: Document, what: str, more: str) -> list[dict[str, Any]]:
    return [envelope.message(201, what, more, id=document.id)]


async def live_node(svc: Services, account_id: str, name: str) -> Node:
    node = await svc.store.node(account_id, name)
    if node is None or node.status == "DELETED":
        raise NotFound(f"you have no live node named {name}", more="GET /v1/nodes lists yours")
    return node


async def node_by_id(svc: Services, account_id: str, node_id: str) -> Node:
    node = await svc.store.node_by_id(account_id, node_id)
    if node is None:
        raise NotFound(f"you have no node {node_id}", more="node ids (NOD…) are in GET /v1/nodes")
    return node
