"""Reading request bodies: size- and time-limited, UTF-8, JSON no deeper than a few levels, then
strictly typed — or a 4xx saying why, in words, with the field when one can be named."""

from __future__ import annotations

import asyncio
import re
from typing import Any, Final, TypeVar

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from gateway.errors import BadRequest, RequestTimeout, TooLarge
from gateway.services import services

S = TypeVar("S", bound=msgspec.Struct)

MAX_NESTING: Final = 32
"""Objects and arrays inside one another: Megam's deepest body (a node's command) needs 5. The
limit also keeps every later encoder (orjson stops at 255) and the store away from the edge."""

_OPEN_STRING_FIELD: Final = re.compile(r'"((?:[^"\\]|\\.){1,64})"\s*:\s*"(?:[^"\\]|\\.)*$')


async def read(request: web.Request) -> bytes:
    limit = services(request).options.body_timeout_seconds
    try:
        async with asyncio.timeout(limit):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise TooLarge(
            "the request body is too large", more=f"the limit is {request.client_max_size} bytes"
        ) from None
    except TimeoutError:
        raise RequestTimeout(
            f"the request body did not arrive within {limit:g} seconds",
            more="send the whole body at once, as its Content-Length says",
        ) from None
    except (HttpProcessingError, RequestPayloadError) as exc:  # broken chunking, bad gzip, …
        raise BadRequest("the request body cannot be read", more=_reason(exc)) from None


def _reason(exc: Exception) -> str:
    cause = exc if isinstance(exc, HttpProcessingError) else exc.__cause__
    if isinstance(cause, HttpProcessingError):
        return cause.message
    return str(exc)


async def json_object(request: web.Request) -> dict[str, Any]:
    return decode_object(await read(request))


def decode_object(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body``, or a :class:`BadRequest` that says what is wrong with it."""
    if not body.strip():
        raise BadRequest("the request body is empty", more="send a JSON object")
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise BadRequest("the request body is not valid JSON", more=str(exc)) from None
    except UnicodeDecodeError:  # what msgspec raises for bytes inside a string that are no UTF-8
        raise _not_utf8(body) from None
    except RecursionError:
        raise _too_deep() from None
    if not isinstance(value, dict):
        raise BadRequest(
            "the request body must be a JSON object", more=f"got {type(value).__name__}"
        )
    if nesting(value) > MAX_NESTING:
        raise _too_deep()
    return value


def nesting(value: Any) -> int:
    """How many objects and arrays are inside one another in ``value`` (a scalar is 0)."""
    deepest, stack = 0, [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _too_deep() -> BadRequest:
    return BadRequest(
        f"the request body nests objects and arrays more than {MAX_NESTING} levels deep",
        more="Megam's bodies are a few levels deep; flatten the structure",
    )


def _not_utf8(body: bytes) -> BadRequest:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        field = _field_open_at(body[: exc.start])
        where = f"in the value of {field!r}" if field else f"at byte {exc.start}"
        return BadRequest(
            f"the request body is not UTF-8 text {where}",
            more=f"byte 0x{body[exc.start]:02x} at position {exc.start} is not UTF-8; "
            "JSON bodies must be UTF-8 encoded",
        )
    return BadRequest("the request body is not UTF-8 text", more="JSON must be UTF-8 encoded")


def _field_open_at(before: bytes) -> str | None:
    """The name of the string field being written where ``before`` ends, if it is one."""
    match = _OPEN_STRING_FIELD.search(before[-4096:].decode("utf-8", errors="replace"))
    return match.group(1) if match else None


def convert(raw: dict[str, Any], kind: type[S], what: str) -> S:
    try:
        return msgspec.convert(raw, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"the body is not a valid {what}", more=str(exc)) from None


async def parse(request: web.Request, kind: type[S], what: str) -> S:
    return convert(await json_object(request), kind, what)
