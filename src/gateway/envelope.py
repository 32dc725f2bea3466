"""Megam's JSON shapes: ``json_claz`` on every object, collections, and 201 message arrays."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson
from aiohttp import web

from gateway.errors import ApiError

LINKS: Final = (
    "API reference: GET /v1/openapi.json | your requests and why they wait: GET /v1/requests"
)


def obj(claz: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    return {**fields, "json_claz": f"Megam::{claz}"}


COLLECTION_CLASSES: Final = {"AppDefns": "AppDefnCollection", "BoltDefns": "BoltDefnCollection"}
"""The original's collections not named after their members (the original client's json_claz
table, megam/core/json_compat.rb: it cannot read any other name)."""


def collection(claz: str, items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    name = COLLECTION_CLASSES.get(claz, f"{claz}Collection")
    return {"json_claz": f"Megam::{name}", "results": list(items)}


def message(
    code: int, msg: str, more: str = "", *, msg_type: str = "info", **extra: Any
) -> dict[str, Any]:
    """One entry of a create/update answer. ``extra`` fields (ids) help clients that follow up."""
    return {
        "code": code,
        "msg_type": msg_type,
        "msg": msg,
        "more": more,
        "json_claz": "Megam::Error",
        "links": LINKS,
        **extra,
    }


def error(err: ApiError) -> dict[str, Any]:
    return message(err.status, err.msg, err.more, msg_type="error")


def json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def created(messages: list[dict[str, Any]]) -> web.Response:
    return json(messages, status=201)


def queue_crowded(count: int, error: str) -> dict[str, Any]:
    """Megam's answer when the queue cannot take a request; here the jobs are kept and queued
    later, so nothing has to be sent again."""
    return message(
        503,
        "queue servers are crowded",
        f"{count} job(s) are saved and will be queued automatically as soon as the queue "
        f"answers ({error}); GET /v1/requests shows why they wait",
        msg_type="error",
    )
