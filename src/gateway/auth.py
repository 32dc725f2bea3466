"""Megam's HMAC request signatures (docs/original.md §2.1), checked on every non-open route.

Each failure names the credential that is wrong, because "HMAC doesn't match" alone left the
original's users guessing (nilavu #1076): a header that cannot be read is a 406, an unknown
email or a signature made with another key is a 401 that says which.
"""

from __future__ import annotations

import calendar
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from gateway import bodies
from gateway.errors import NotAcceptable, Unauthorized, Unavailable
from gateway.services import CALLER, Services, services
from gateway.store.records import Account
from megam import hmac
from megam.secrets import SecretError

OPEN_ROUTES: Final = frozenset({("POST", "/v1/accounts/content"), ("GET", "/v1/openapi.json")})
"""Everything under /v1 needs a signature except these; paths outside /v1 are all open."""

EMAIL: Final = re.compile(r"^[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,63}$")
HEX: Final = re.compile(r"^[0-9a-fA-F]+$")
SIGNED_STRING: Final = (
    "the signed string is X-Megam-DATE, the request path (with /v1, and ?query when the request "
    "has one) and base64(md5(body)), joined by newlines"
)
Scheme = tuple[hmac.Algorithm, hmac.DigestEncoding]
EXPLICIT: Final[dict[str, tuple[Scheme, ...]]] = {
    "sha1": (("sha1", "base64"),),
    "sha256": (("sha256", "base64"),),
}
"""What X-Megam-HMAC-ALG asks for (our clients send it with SHA-256) …"""
BY_LENGTH: Final[dict[hmac.Algorithm, tuple[Scheme, ...]]] = {
    "sha1": (("sha1", "base64"),),
    "sha256": (("sha256", "base64url"), ("sha256", "base64")),
}
"""… and what a signature without it can be: the 2013 client's HMAC-SHA1, or the 2016 client's
HMAC-SHA256 over a URL-safe Base64 body digest (and a client of ours that left the header out)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if needs_signature(request):
        request[CALLER] = await verify(request, services(request))
    return await handler(request)


def needs_signature(request: web.Request) -> bool:
    if not request.path.startswith("/v1/"):
        return False
    resource = request.match_info.route.resource
    if resource is None:
        return False  # no such route: the router answers 404 without reading anything
    return (request.method, resource.canonical) not in OPEN_ROUTES


async def verify(request: web.Request, svc: Services) -> Account:
    email, presented = _parse_hmac_header(request.headers.get(hmac.HMAC_HEADER))
    date = request.headers.get(hmac.DATE_HEADER, "").strip()
    if not date:
        raise NotAcceptable(
            f"the {hmac.DATE_HEADER} header is missing",
            more=f"send it as YYYY-MM-DD HH:MM; {SIGNED_STRING}",
        )
    schemes = _schemes(request.headers.get(hmac.ALG_HEADER), presented)
    if svc.options.clock_skew_seconds is not None:
        _check_freshness(date, svc.options.clock_skew_seconds, svc.options.client_utc_offsets)
    body = await bodies.read(request)
    account, api_key = await _account_and_key(svc, email)
    alg_header = request.headers.get(hmac.ALG_HEADER, "")  # with the length, decides the schemes
    target = request.rel_url.raw_path_qs
    checked = (email, alg_header, date, presented, target) if not body else None
    if checked is not None and svc.signatures.get(checked) == api_key:
        return account  # the same signed GET again (a client polling): already verified
    if not any(
        hmac.verify(api_key, date, signed, body, presented, algorithm, encoding)
        for algorithm, encoding in schemes
        for signed in _signed_targets(request)
    ):
        algorithm = schemes[0][0]
        raise Unauthorized(
            f"the signature does not match the api key on record for {email}",
            more=f"sign with the api_key issued to {email} (HMAC-{algorithm.upper()}, hex); "
            f"{SIGNED_STRING}",
        )
    if checked is not None:
        svc.signatures.put(checked, api_key)
    return account


def _schemes(header: str | None, presented: str) -> tuple[Scheme, ...]:
    """How the signature may have been made: as X-Megam-HMAC-ALG says, else as its length says."""
    expected: dict[str, int] = {name: digits for digits, name in hmac.HEX_DIGITS.items()}
    if header is not None:
        algorithm = header.strip().lower()
        if algorithm not in EXPLICIT:
            raise NotAcceptable(
                f"{hmac.ALG_HEADER} must be sha1 or sha256, not {algorithm!r}",
                more="leave the header out for Megam's original HMAC-SHA1",
            )
        if len(presented) != expected[algorithm]:
            raise NotAcceptable(
                f"the signature in {hmac.HMAC_HEADER} has {len(presented)} hex digits, but an "
                f"HMAC-{algorithm.upper()} has {expected[algorithm]}",
                more=f"{hmac.ALG_HEADER} names the hash the signature was made with",
            )
        return EXPLICIT[algorithm]
    detected = hmac.HEX_DIGITS.get(len(presented))
    if detected is None:
        raise NotAcceptable(
            f"the signature in {hmac.HMAC_HEADER} has {len(presented)} hex digits",
            more="an HMAC-SHA1 signature has 40 and an HMAC-SHA256 one 64",
        )
    return BY_LENGTH[detected]


async def _account_and_key(svc: Services, email: str) -> tuple[Account, str]:
    cached = svc.accounts.get(email)
    if cached is not None:
        return cached
    account = await svc.store.account_by_email(email)
    if account is None:
        raise Unauthorized(
            f"no account is registered for {email}",
            more="check the email in X-Megam-HMAC, or create the account with "
            "POST /v1/accounts/content",
        )
    try:
        api_key = svc.sealer.decrypt(account.api_key_encrypted)
    except SecretError as exc:
        raise Unavailable(
            f"the api key of {email} cannot be read with this gateway's secret key",
            more="the gateway was started with a different MEGAM_SECRET_KEY_FILE than the one "
            f"that stored the account: {exc}",
        ) from None
    svc.accounts.put(account, api_key)
    return account, api_key


def _parse_hmac_header(value: str | None) -> tuple[str, str]:
    if value is None or not value.strip():
        raise Unauthorized(
            "this request is not signed",
            more=f"send {hmac.HMAC_HEADER}: <email>:<hex signature> and {hmac.DATE_HEADER}; "
            f"{SIGNED_STRING}",
        )
    email, colon, rest = value.strip().partition(":")
    signature = rest.split(":", 1)[0].strip()  # like the original: the first two parts count
    email = email.strip().lower()
    if not colon or not signature:
        raise NotAcceptable(
            f"couldn't parse the {hmac.HMAC_HEADER} header", more="expected <email>:<hex signature>"
        )
    if not EMAIL.fullmatch(email):
        raise NotAcceptable(
            f"the {hmac.HMAC_HEADER} header does not start with an email address",
            more="expected <email>:<hex signature>",
        )
    if not HEX.fullmatch(signature):
        raise NotAcceptable(
            f"the signature in {hmac.HMAC_HEADER} is not hexadecimal",
            more="expected <email>:<hex signature>, the HMAC as lower-case hex",
        )
    return email, signature


def _signed_targets(request: web.Request) -> list[str]:
    """What the client may have signed: the path as sent or decoded (some clients encode
    a@b as a%40b, some do not), with the query as sent or as our clients write it."""
    raw = request.rel_url.raw_path
    paths = (raw,) if raw == request.path else (raw, request.path)
    query = request.rel_url.raw_query_string
    if not query:
        return list(paths)  # the original clients' case: nothing changes for them
    queries = dict.fromkeys(q for q in (query, _canonical_query(query)) if q)
    return [f"{path}?{q}" for path in paths for q in queries]


def _canonical_query(query: str) -> str | None:
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None  # not UTF-8 once decoded: only the query as sent can have been signed
    return hmac.canonical_query(pairs)


def _check_freshness(date: str, window: float, offsets: tuple[float, ...] = ()) -> None:
    """``date`` is UTC, or the local time of a zone the operator named (``offsets``, seconds
    east of UTC): the 2014 client signs its machine's local time."""
    try:
        written = calendar.timegm(time.strptime(date, hmac.DATE_FORMAT))
    except ValueError:
        raise NotAcceptable(
            f"{hmac.DATE_HEADER} {date!r} is not a date", more="send it as YYYY-MM-DD HH:MM (UTC)"
        ) from None
    now = time.time()
    skew = min(_skew(written - offset, now) for offset in (0.0, *offsets))
    if skew > window:
        raise Unauthorized(
            f"{hmac.DATE_HEADER} {date} is {skew / 60:,.0f} minutes away from the gateway's "
            "clock: the signature has expired or was made for later",
            more=f"a signature is accepted within {window / 60:g} minutes of the gateway's clock "
            "(MEGAM_GATEWAY_CLOCK_SKEW_MINUTES); sign with the current UTC time as "
            "YYYY-MM-DD HH:MM",
        )


def _skew(signed_at: float, now: float) -> float:
    # the date has minute resolution: the minute it names counts in full
    return max(signed_at - now, now - (signed_at + 60), 0.0)
