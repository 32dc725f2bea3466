"""Megam's request signature (megam-original.md §2.1), used by the gateway and every client.

    X-Megam-HMAC: <email>:<hex HMAC(api_key, date "\\n" path "\\n" base64(md5(body)))>
    X-Megam-DATE: <YYYY-MM-DD HH:MM>

HMAC-SHA1 as the 2013 original; HMAC-SHA256 as its 2016 variant (signalled by the client with
``X-Megam-HMAC-ALG: sha256``). Comparison is constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Final, Literal

Algorithm = Literal["sha1", "sha256"]

HMAC_HEADER: Final = "X-Megam-HMAC"
DATE_HEADER: Final = "X-Megam-DATE"
ALG_HEADER: Final = "X-Megam-HMAC-ALG"
DATE_FORMAT: Final = "%Y-%m-%d %H:%M"


def body_digest(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


def string_to_sign(date: str, path: str, body: bytes) -> bytes:
    return f"{date}\n{path}\n{body_digest(body)}".encode()


def signature(
    api_key: str, date: str, path: str, body: bytes, algorithm: Algorithm = "sha1"
) -> str:
    return hmac.new(api_key.encode(), string_to_sign(date, path, body), algorithm).hexdigest()


def verify(
    api_key: str, date: str, path: str, body: bytes, presented: str, algorithm: Algorithm = "sha1"
) -> bool:
    expected = signature(api_key, date, path, body, algorithm)
    return hmac.compare_digest(expected.encode(), presented.lower().encode())


def format_date(epoch: float | None = None) -> str:
    return time.strftime(DATE_FORMAT, time.gmtime(time.time() if epoch is None else epoch))


def sign_headers(
    email: str,
    api_key: str,
    path: str,
    body: bytes = b"",
    algorithm: Algorithm = "sha1",
    date: str | None = None,
) -> dict[str, str]:
    """Headers a client sends for ``path`` (which includes ``/v1`` and no query string)."""
    date = date or format_date()
    headers = {
        HMAC_HEADER: f"{email}:{signature(api_key, date, path, body, algorithm)}",
        DATE_HEADER: date,
    }
    if algorithm != "sha1":
        headers[ALG_HEADER] = algorithm
    return headers
