"""Finding old log lines: text, node, job state and time range, with the matches marked."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.console import console
from tests.console.conftest import Gateway
from tests.console.test_nodes import signed_in_with_a_local_cloud


def launched(page: Page, gateway: Gateway) -> None:
    signed_in_with_a_local_cloud(page, gateway)
    console.launch(page, "web.megam.local", "home", "recipe[zanzibar]", count=2)
    for name in ("web1.megam.local", "web2.megam.local"):
        status = page.locator(f'tr[data-node="{name}"] .node-status')
        expect(status).to_have_text("RUNNING", timeout=60_000)
    page.get_by_role("link", name="Search logs").click()


def test_search_finds_lines_across_nodes_and_marks_the_words(page: Page, gateway: Gateway) -> None:
    launched(page, gateway)
    page.get_by_label("Text").fill("applied zanzibar")
    page.get_by_role("button", name="Search").click()

    hits = page.locator("tr.hit")
    expect(hits).to_have_count(2)
    expect(hits.filter(has_text="web1.megam.local")).to_have_count(1)
    expect(hits.filter(has_text="web2.megam.local")).to_have_count(1)
    marks = hits.first.locator("mark")
    expect(marks).to_have_text(["applied", "zanzibar", "zanzibar"])  # the path has it too
    expect(hits.first).to_contain_text("succeeded")


def test_search_narrows_by_node_state_and_time(page: Page, gateway: Gateway) -> None:
    launched(page, gateway)
    page.get_by_label("Text").fill("applied zanzibar")
    page.get_by_label("Node").fill("web2.megam.local")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("tr.hit")).to_have_count(1)
    expect(page.locator("tr.hit")).to_contain_text("web2.megam.local")

    page.get_by_label("Job state").select_option("failed")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No log line matches.")).to_be_visible()

    page.get_by_label("Job state").select_option("succeeded")
    page.get_by_label("From (UTC)").fill("2000-01-01T00:00")
    page.get_by_label("To (UTC)").fill("2000-01-02T00:00")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No log line matches.")).to_be_visible()

    page.get_by_label("To (UTC)").fill("")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("tr.hit")).to_have_count(1)


def test_a_log_line_is_shown_as_text_never_as_markup(page: Page, gateway: Gateway) -> None:
    launched(page, gateway)
    page.get_by_label("Text").fill("<li>recipe[zanzibar]</li>")
    page.get_by_role("button", name="Search").click()
    # whatever matches, nothing from a log line becomes an element of the page
    expect(page.locator("tr.hit li")).to_have_count(0)
