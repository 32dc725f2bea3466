"""Query-string parameters, validated like bodies: a bad value is a 400 that says which."""

from __future__ import annotations

import math
import re
from typing import Final

from aiohttp import web

from gateway.errors import BadRequest

JOB_ID: Final = re.compile(r"^[A-Z]{3}[0-9]{1,20}$")


def integer(
    request: web.Request, name: str, *, default: int | None, low: int, high: int
) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"query parameter {name} must be between {low} and {high}, got {value}")
    return value


def job_id(request: web.Request) -> str | None:
    raw = request.query.get("job")
    if raw is None or raw == "":
        return None
    if not JOB_ID.fullmatch(raw):
        raise BadRequest(f"query parameter job must be a job id such as RIP4316…, got {raw!r}")
    return raw


def epoch(request: web.Request, name: str) -> float | None:
    """Seconds since the epoch, or None when absent."""
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name} must be seconds since the epoch") from None
    if not math.isfinite(value):
        raise BadRequest(f"query parameter {name} must be a finite number")
    return value
