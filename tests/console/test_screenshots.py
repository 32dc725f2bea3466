"""Every main page at 1280 and 390 px wide: nothing wider than the screen, and a screenshot of
each. Screenshots go to the test's temporary directory; to refresh the ones in the docs, run
``MEGAM_SCREENSHOTS_DIR=docs/screenshots .venv/bin/pytest tests/console/test_screenshots.py``
and review them."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.console import console
from tests.console.conftest import OPERATOR, Gateway

WIDTHS = [(1280, 900), (390, 844)]  # desktop, phone


def shoot(page: Page, name: str, into: Path) -> None:
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(200)  # let the layout settle after the resize
        overflow = page.evaluate("() => document.documentElement.scrollWidth")
        assert overflow <= width, f"{name} is {overflow}px wide at {width}px"
        page.screenshot(path=into / f"{name}-{width}.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_the_main_pages_fit_desktop_and_phone_widths(
    page: Page, gateway_sampling: Gateway, tmp_path: Path
) -> None:
    gateway = gateway_sampling
    screenshots = Path(os.environ.get("MEGAM_SCREENSHOTS_DIR") or tmp_path)
    screenshots.mkdir(parents=True, exist_ok=True)
    page.goto(gateway.url + "/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shoot(page, "signin", screenshots)

    api_key = gateway.sign_up(OPERATOR)
    console.sign_in(page, gateway.url, OPERATOR, api_key)
    console.add_cloud(page, "home", "local")
    console.add_cloud(
        page,
        "aws",
        "ec2",
        Image="ami-0abc",
        Flavor="t2.micro",
        Region="us-east-1",
        **{"SSH key": "ops", "Credentials": "aws_access_key_id=AKIA\naws_secret_access_key=s3"},
    )
    shoot(page, "clouds", screenshots)

    console.launch(page, "web.megam.local", "home", "recipe[hello]", count=2, predef="rails")
    console.launch(page, "db.megam.local", "aws", "role[postgresql]")
    page.get_by_role("link", name="Nodes", exact=True).click()
    expect(page.locator('tr[data-node="web2.megam.local"] .node-status')).to_have_text(
        "RUNNING", timeout=60_000
    )
    shoot(page, "nodes", screenshots)

    page.get_by_role("link", name="Launch", exact=True).click()
    expect(page.get_by_label("Predef cloud")).to_contain_text("home")
    shoot(page, "launch", screenshots)

    console.open_node(page, "web1.megam.local")
    # real samples of the node's process, taken by its herk host: the request rate needs two
    expect(page.locator("figure.metric", has_text="http_requests_per_min")).to_be_visible(
        timeout=30_000
    )
    shoot(page, "node", screenshots)

    page.get_by_role("link", name="Search logs").click()
    page.get_by_label("Text").fill("applied hello")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("tr.hit")).to_have_count(2)
    shoot(page, "search", screenshots)

    page.get_by_role("link", name="Cluster").click()
    expect(page.locator("tr[data-herk]")).to_have_count(1)
    shoot(page, "cluster", screenshots)
