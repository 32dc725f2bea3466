"""Reading request bodies: size-limited, JSON, then strictly typed — or a 4xx saying why."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from aiohttp import web

from gateway.errors import BadRequest, TooLarge

S = TypeVar("S", bound=msgspec.Struct)


async def read(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.client_max_size
        raise TooLarge(
            "the request body is too large", more=f"the limit is {limit} bytes"
        ) from None


async def json_object(request: web.Request) -> dict[str, Any]:
    body = await read(request)
    if not body.strip():
        raise BadRequest("the request body is empty", more="send a JSON object")
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise BadRequest("the request body is not valid JSON", more=str(exc)) from None
    if not isinstance(value, dict):
        raise BadRequest(
            "the request body must be a JSON object", more=f"got {type(value).__name__}"
        )
    return value


def convert(raw: dict[str, Any], kind: type[S], what: str) -> S:
    try:
        return msgspec.convert(raw, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"the body is not a valid {what}", more=str(exc)) from None


async def parse(request: web.Request, kind: type[S], what: str) -> S:
    return convert(await json_object(request), kind, what)
