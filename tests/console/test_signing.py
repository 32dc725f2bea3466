"""The browser signs requests exactly as megam.hmac does: MD5, base64, HMAC-SHA1 and -SHA256,
with WebCrypto where the page has it, else (plain http at a LAN address) with pure-JS hashes."""

from __future__ import annotations

import base64
import hashlib

import pytest
from playwright.sync_api import Page, Request, expect

from megam import hmac
from tests.console import console
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


# (algorithm, text, times repeated, digest): RFC 3174 §7.3 for SHA-1, FIPS 180-2 appendix B
# for SHA-256, and the empty message.
PUBLISHED_DIGESTS = [
    ("sha1", "", 1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    ("sha1", "abc", 1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
    (
        "sha1",
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        1,
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
    ),
    ("sha1", "a", 1_000_000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"),
    ("sha1", "01234567" * 8, 10, "dea356a2cddd90c7a7ecedc5ebb563934f460452"),
    ("sha256", "", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("sha256", "abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (
        "sha256",
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        1,
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ),
    (
        "sha256",
        "a",
        1_000_000,
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
    ),
]

LONG_KEY_SHA1 = b"\xaa" * 80  # longer than a block: hashed first
LONG_KEY_SHA256 = b"\xaa" * 131
# (algorithm, key, message, HMAC): RFC 2202 §3 (all but the truncated case 5 of RFC 4231, §4).
PUBLISHED_HMACS = [
    ("sha1", b"\x0b" * 20, b"Hi There", "b617318655057264e28bc0b6fb378c8ef146be00"),
    (
        "sha1",
        b"Jefe",
        b"what do ya want for nothing?",
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
    ),
    ("sha1", b"\xaa" * 20, b"\xdd" * 50, "125d7342b9ac11cd91a39af48aa17b4f63f175d3"),
    ("sha1", bytes(range(1, 26)), b"\xcd" * 50, "4c9007f4026250c6bc8414f9bf50c86c2d7235da"),
    ("sha1", b"\x0c" * 20, b"Test With Truncation", "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"),
    (
        "sha1",
        LONG_KEY_SHA1,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "aa4ae5e15272d00e95705637ce8a3b55ed402112",
    ),
    (
        "sha1",
        LONG_KEY_SHA1,
        b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data",
        "e8e99d0f45237d786d6bbaa7965c7808bbff1a91",
    ),
    (
        "sha256",
        b"\x0b" * 20,
        b"Hi There",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    ),
    (
        "sha256",
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        "sha256",
        b"\xaa" * 20,
        b"\xdd" * 50,
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    ),
    (
        "sha256",
        bytes(range(1, 26)),
        b"\xcd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    (
        "sha256",
        LONG_KEY_SHA256,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        "sha256",
        LONG_KEY_SHA256,
        b"This is a test using a larger than block-size key and a larger than block-size data."
        b" The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]


def test_sha1_and_sha256_in_the_browser_give_the_published_digests(
    page: Page, gateway: Gateway
) -> None:
    page.goto(gateway.url + "/")
    cases = [(algorithm, text, times) for algorithm, text, times, _ in PUBLISHED_DIGESTS] + [
        (algorithm, body, 1) for body in BODIES for algorithm in ("sha1", "sha256")
    ]
    digests = page.evaluate(
        """async (cases) => {
            const { HASHES } = await import("/console/js/hmac.js");
            const { hex } = await import("/console/js/md5.js");
            const bytes = (text) => new TextEncoder().encode(text);
            return cases.map(([alg, text, times]) => hex(HASHES[alg](bytes(text.repeat(times)))));
        }""",
        cases,
    )
    published = [digest for *_, digest in PUBLISHED_DIGESTS]
    from_python = [
        hashlib.new(algorithm, text.encode()).hexdigest() for algorithm, text, _ in cases
    ]
    assert digests == published + from_python[len(published) :]


def test_hmac_in_the_browser_gives_the_published_answers(page: Page, gateway: Gateway) -> None:
    page.goto(gateway.url + "/")
    answers = page.evaluate(
        """async (cases) => {
            const { HASHES, hmac } = await import("/console/js/hmac.js");
            const { hex } = await import("/console/js/md5.js");
            const bytes = (hexText) => Uint8Array.from(hexText.match(/../g) || [],
                (pair) => parseInt(pair, 16));
            return cases.map(([alg, key, message]) =>
                hex(hmac(HASHES[alg], bytes(key), bytes(message))));
        }""",
        [(algorithm, key.hex(), message.hex()) for algorithm, key, message, _ in PUBLISHED_HMACS],
    )
    assert answers == [answer for *_, answer in PUBLISHED_HMACS]


def has_webcrypto(page: Page) -> bool:
    return page.evaluate("() => globalThis.crypto?.subtle !== undefined")


@pytest.mark.parametrize("webcrypto", [True, False], ids=["webcrypto", "pure-js"])
def test_signatures_in_the_browser_match_megam_hmac(
    page: Page, gateway: Gateway, webcrypto: bool
) -> None:
    if not webcrypto:
        console.without_webcrypto(page)
    page.goto(gateway.url + "/")
    assert has_webcrypto(page) == webcrypto
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


@pytest.mark.parametrize("algorithm", ["sha1", "sha256"])
def test_a_user_works_on_a_page_without_webcrypto(
    page: Page, gateway: Gateway, algorithm: str
) -> None:
    console.without_webcrypto(page)
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request))
    api_key = gateway.sign_up("ada@megam.io")

    console.sign_in(page, gateway.url, "ada@megam.io", api_key, algorithm)
    assert not has_webcrypto(page)
    console.add_cloud(page, "home", "local")
    console.launch(page, "web.megam.local", "home")

    # the gateway verified every signature: the node list shows the node it launched
    page.get_by_role("link", name="Nodes", exact=True).click()
    node = page.locator('tr[data-node="web.megam.local"]')
    expect(node.locator(".node-status")).to_have_text("RUNNING", timeout=60_000)
    signed = [request.headers for request in sent if "x-megam-hmac" in request.headers]
    assert len(signed) >= 4  # sign in, save the cloud, launch, list the nodes
    assert {headers.get("x-megam-hmac-alg", "sha1") for headers in signed} == {algorithm}


def test_the_browser_formats_x_megam_date_in_utc(page: Page, gateway: Gateway) -> None:
    page.goto(gateway.url + "/")
    formatted = page.evaluate(
        """async () => {
            const { megamDate } = await import("/console/js/api.js");
            return megamDate(new Date(Date.UTC(2013, 6, 1, 9, 5, 59)));
        }"""
    )
    assert formatted == hmac.format_date(1372669559) == "2013-07-01 09:05"
