"""A real ``megam up`` and a real Chromium (Debian's, driven by Playwright) for the console tests.

The gateway runs with the fake ``knife`` first on PATH, told to hang after its first lines: an
ec2 launch then stays running until cancelled, which is what the live-log and cancel tests need.
The local cloud does not use knife and finishes in well under a second.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from megam import hmac
from tests.e2e.conftest import Processes, megam_env, processes, wait_http  # noqa: F401 - fixtures

FAKES = Path(__file__).resolve().parents[1] / "fakes"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
OPERATOR = "ops@megam.io"


@dataclass
class Gateway:
    """The running platform, and a signed Python client to arrange what a test needs."""

    url: str
    procs: Processes

    def sign_up(self, email: str) -> str:
        answer = self.call("POST", "/v1/accounts/content", {"email": email}, email=None)
        return answer["api_key"]

    def call(
        self, method: str, path: str, body: Any = None, *, email: str | None, api_key: str = ""
    ) -> Any:
        data = b"" if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if email is not None:
            headers |= hmac.sign_headers(email, api_key, path, data)  # with its query
        request = urllib.request.Request(
            self.url + path, data=data if body is not None else None, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()!r}") from None


def start_platform(processes: Processes, *, sample_seconds: float = 0) -> Gateway:  # noqa: F811
    """``megam up`` with the fake knife first on PATH (it hangs mid-create until cancelled).

    Herk's metric sampling is off unless asked for, so chart tests see only the samples they
    publish themselves.
    """
    processes.start(
        "up",
        "up",
        "--workers",
        "2",
        PATH=f"{FAKES}:{processes.env['PATH']}",
        MEGAM_HERK_PASSENV="MEGAM_FAKE_*",
        MEGAM_FAKE_HANG="1",
        MEGAM_FAKE_LINES="3",
        MEGAM_ADMIN_EMAILS=OPERATOR,
        MEGAM_HERK_SAMPLE_SECONDS=str(sample_seconds),
        MEGAM_GATEWAY_ROLLUP_INTERVAL="0.5",  # charts of long spans need rolled-up points
    )
    url = processes.env["MEGAM_URL"]
    wait_http(url + "/healthz")
    return Gateway(url, processes)


@pytest.fixture
def gateway(processes: Processes) -> Gateway:  # noqa: F811 - the e2e fixture, reused
    """``megam up`` on its embedded bus."""
    return start_platform(processes)


@pytest.fixture
def gateway_sampling(processes: Processes) -> Gateway:  # noqa: F811
    """``megam up`` whose herk host samples its local nodes every second, as in production."""
    return start_platform(processes, sample_seconds=1)


@pytest.fixture
def gateway_on_rabbitmq(amqp_url: str, processes: Processes) -> Gateway:  # noqa: F811
    """``megam up`` on the real RabbitMQ, where a test can publish as herk or a node agent would.

    The vhost comes first so that it goes last: deleted under a running platform, it left
    ``megam up`` retrying its connections until the 40 s stop timeout killed it."""
    processes.env["MEGAM_AMQP_URL"] = amqp_url
    return start_platform(processes)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One browser for the console tests; closed when they end, because Playwright's sync API
    keeps an event loop in this thread while it runs, which async tests after it cannot share."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser tab (own storage) at 1280 px; any uncaught script error fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"the console threw: {errors}"
