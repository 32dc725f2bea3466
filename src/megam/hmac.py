"""Megam's request signature (docs/original.md §2.1), used by the gateway and every client.

    X-Megam-HMAC: <email>:<hex HMAC(api_key, date "\\n" target "\\n" base64(md5(body)))>
    X-Megam-DATE: <YYYY-MM-DD HH:MM>, UTC

``target`` is the path (with ``/v1``) and, when the request has a query, ``?`` and the query: a
signature made for one query does not serve another. The original clients send no query, so what
they sign is unchanged.

HMAC-SHA1 as the 2013 original; HMAC-SHA256 as its 2016 variant, which also encodes the body's
MD5 in URL-safe Base64 and sends no header saying so (the gateway tells the two apart by the
signature's length); our clients send ``X-Megam-HMAC-ALG: sha256``. Comparison is constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from typing import Final, Literal
from urllib.parse import quote

Algorithm = Literal["sha1", "sha256"]
DigestEncoding = Literal["base64", "base64url"]
"""How the body's MD5 is written in the signed string: the original's Base64, or the 2016
client's URL-safe Base64."""

HMAC_HEADER: Final = "X-Megam-HMAC"
DATE_HEADER: Final = "X-Megam-DATE"
ALG_HEADER: Final = "X-Megam-HMAC-ALG"
DATE_FORMAT: Final = "%Y-%m-%d %H:%M"
HEX_DIGITS: Final[dict[int, Algorithm]] = {40: "sha1", 64: "sha256"}
"""An HMAC's length in hex digits says which hash made it."""


def body_digest(body: bytes, encoding: DigestEncoding = "base64") -> str:
    digest = hashlib.md5(body, usedforsecurity=False).digest()
    encode = base64.urlsafe_b64encode if encoding == "base64url" else base64.b64encode
    return encode(digest).decode()


def string_to_sign(
    date: str, target: str, body: bytes, encoding: DigestEncoding = "base64"
) -> bytes:
    return f"{date}\n{target}\n{body_digest(body, encoding)}".encode()


def signature(
    api_key: str,
    date: str,
    target: str,
    body: bytes,
    algorithm: Algorithm = "sha1",
    encoding: DigestEncoding = "base64",
) -> str:
    message = string_to_sign(date, target, body, encoding)
    return hmac.new(api_key.encode(), message, algorithm).hexdigest()


def verify(
    api_key: str,
    date: str,
    target: str,
    body: bytes,
    presented: str,
    algorithm: Algorithm = "sha1",
    encoding: DigestEncoding = "base64",
) -> bool:
    expected = signature(api_key, date, target, body, algorithm, encoding)
    return hmac.compare_digest(expected.encode(), presented.lower().encode())


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Query pairs in their order, every byte but RFC 3986's unreserved ones percent-encoded
    (a space is ``%20``): the form our clients send, and one the gateway rebuilds to check."""
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs)


def request_target(path: str, params: Mapping[str, object] | None = None) -> str:
    """What a client sends and signs for ``path`` with ``params`` (``None`` values left out)."""
    pairs = [(name, str(value)) for name, value in (params or {}).items() if value is not None]
    return f"{path}?{canonical_query(pairs)}" if pairs else path


def format_date(epoch: float | None = None) -> str:
    return time.strftime(DATE_FORMAT, time.gmtime(time.time() if epoch is None else epoch))


def sign_headers(
    email: str,
    api_key: str,
    target: str,
    body: bytes = b"",
    algorithm: Algorithm = "sha1",
    date: str | None = None,
) -> dict[str, str]:
    """Headers a client sends for ``target``: the path (with ``/v1``) and its query, if any,
    exactly as sent (:func:`request_target` builds one)."""
    date = date or format_date()
    headers = {
        HMAC_HEADER: f"{email}:{signature(api_key, date, target, body, algorithm)}",
        DATE_HEADER: date,
    }
    if algorithm != "sha1":
        headers[ALG_HEADER] = algorithm
    return headers
