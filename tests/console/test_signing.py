"""The browser signs requests exactly as megam.hmac does: MD5, base64, HMAC-SHA1 and -SHA256."""

from __future__ import annotations

import base64
import hashlib

from playwright.sync_api import Page

from megam import hmac
from tests.console.conftest import Gateway

BODIES = [
    "",
    "a",
    "abc",
    '{"node_name":"web.megam.local","predefcloud":"home"}',
    "x" * 55,  # the last length that fits one padded block
    "x" * 56,  # the first that needs a second block
    "x" * 64,
    "y" * 1000,
    "ünïcødé ✓ 日本",
]


def test_md5_in_the_browser_matches_python(page: Page, gateway: Gateway) -> None:
    page.goto(gateway.url + "/")
    digests = page.evaluate(
        """async (bodies) => {
            const { md5, hex, base64 } = await import("/console/js/md5.js");
            const bytes = (text) => new TextEncoder().encode(text);
            return bodies.map((body) => [hex(md5(bytes(body))), base64(md5(bytes(body)))]);
        }""",
        BODIES,
    )
    for body, (hex_digest, b64_digest) in zip(BODIES, digests, strict=True):
        expected = hashlib.md5(body.encode(), usedforsecurity=False)
        assert hex_digest == expected.hexdigest(), body
        assert (
            b64_digest
            == base64.b64encode(expected.digest()).decode()
            == hmac.body_digest(body.encode())
        )


def test_signatures_in_the_browser_match_megam_hmac(page: Page, gateway: Gateway) -> None:
    page.goto(gateway.url + "/")
    cases = [
        (key, date, path, body, algorithm)
        for key, date, path, body in [
            ("A--ScFRiyt4tydkEImhH4SBKynTtEM4_", "2026-11-28 00:56", "/v1/nodes", ""),
            ("k" * 16, "2013-07-01 10:00", "/v1/nodes/content", BODIES[3]),
            ("key+with/odd=chars~", "2026-01-01 23:59", "/v1/accounts/a@b.io", "ünï ✓"),
        ]
        for algorithm in ("sha1", "sha256")
    ]
    browser_signatures = page.evaluate(
        """async (cases) => {
            const { hmacHex, stringToSign } = await import("/console/js/api.js");
            const bytes = (text) => new TextEncoder().encode(text);
            return Promise.all(cases.map(([key, date, path, body, alg]) =>
                hmacHex(key, stringToSign(date, path, bytes(body)), alg)));
        }""",
        cases,
    )
    for (key, date, path, body, algorithm), signature in zip(
        cases, browser_signatures, strict=True
    ):
        assert signature == hmac.signature(key, date, path, body.encode(), algorithm)


def test_the_browser_formats_x_megam_date_in_utc(page: Page, gateway: Gateway) -> None:
    page.goto(gateway.url + "/")
    formatted = page.evaluate(
        """async () => {
            const { megamDate } = await import("/console/js/api.js");
            return megamDate(new Date(Date.UTC(2013, 6, 1, 9, 5, 59)));
        }"""
    )
    assert formatted == hmac.format_date(1372669559) == "2013-07-01 09:05"
