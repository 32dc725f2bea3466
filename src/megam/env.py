"""Reading settings from environment variables: the one parser every service uses.

A variable that is unset or empty means "use the default". A value that cannot be read is a
``ValueError`` naming the variable, what it must be and what it was ("NAME must be …, got '…'"),
so that a service refuses to start with a message its operator can act on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar, overload

T = TypeVar("T")


@overload
def text(name: str, default: str) -> str: ...
@overload
def text(name: str, default: None = None) -> str | None: ...
def text(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name, "")
    return value if value != "" else default


def integer(name: str, default: int) -> int:
    raw = text(name)
    return default if raw is None else _parsed(name, raw, int, "an integer")


def number(name: str, default: float) -> float:
    raw = text(name)
    return default if raw is None else _parsed(name, raw, float, "a number")


def seconds(name: str, default: float, *, positive: bool = False) -> float:
    """A duration: a number of seconds, never negative (above 0 when ``positive``)."""
    raw = text(name)
    if raw is None:
        return default
    value = _parsed(name, raw, float, "a number of seconds")
    if positive and not value > 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    if not value >= 0:  # also refuses nan, which no duration is
        raise ValueError(f"{name} must not be negative, got {raw!r}")
    return value


def _parsed(name: str, raw: str, parse: Callable[[str], T], kind: str) -> T:
    try:
        return parse(raw)
    except ValueError:
        raise ValueError(f"{name} must be {kind}, got {raw!r}") from None
