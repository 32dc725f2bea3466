"""The operators' cluster page: herk nodes, queue depth, dead letters, drain and scale."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from megam import topology
from tests.console import bus, console
from tests.console.conftest import OPERATOR, Gateway


def test_only_operators_see_the_cluster(page: Page, gateway: Gateway) -> None:
    console.sign_in(page, gateway.url, "ada@megam.io", gateway.sign_up("ada@megam.io"))
    page.get_by_role("link", name="Cluster").click()
    expect(page.get_by_role("alert")).to_contain_text("This page is for cluster operators.")
    expect(page.get_by_role("alert")).to_contain_text("MEGAM_ADMIN_EMAILS")


def test_an_operator_scales_and_drains_a_herk_node(page: Page, gateway: Gateway) -> None:
    console.sign_in(page, gateway.url, OPERATOR, gateway.sign_up(OPERATOR))
    page.get_by_role("link", name="Cluster").click()
    herk = page.locator("tr[data-herk]")
    expect(herk).to_have_count(1)
    expect(herk.locator("td").nth(2)).to_have_text("2")  # workers
    expect(page.locator(".queue-depth")).to_have_text("0")

    herk.get_by_role("spinbutton").fill("3")
    herk.get_by_role("button", name="Scale").click()
    expect(page.get_by_role("status").filter(has_text="asked to run 3 workers")).to_be_visible()
    expect(herk.locator("td").nth(2)).to_have_text("3", timeout=30_000)  # from its heartbeat

    herk.get_by_role("button", name="Drain").click()
    expect(herk.locator("td").nth(1)).to_have_text("draining", timeout=30_000)


def test_an_operator_sees_and_discards_a_dead_letter(
    page: Page, gateway_on_rabbitmq: Gateway, amqp_url: str
) -> None:
    gateway = gateway_on_rabbitmq
    bus.publish(amqp_url, [(topology.REQUESTS.name, "job.noop", b"{this is not json")])
    console.sign_in(page, gateway.url, OPERATOR, gateway.sign_up(OPERATOR))
    page.get_by_role("link", name="Cluster").click()

    letter = page.locator("table", has_text="Dead letters").locator("tbody tr")
    expect(letter).to_have_count(1, timeout=30_000)
    expect(letter).to_contain_text("invalid JSON")  # the reason herk gave
    expect(letter.get_by_role("button", name="Requeue")).to_have_count(0)  # not a job request
    letter.get_by_role("button", name="Discard").click()
    expect(page.get_by_text("No dead letters.")).to_be_visible(timeout=30_000)
