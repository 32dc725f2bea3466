"""The operators' cluster page: herk nodes, queue depth, drain and scale, and dead letters
requeued or discarded."""

from __future__ import annotations

import time

from playwright.sync_api import Locator, Page, expect

from megam import topology, wire
from tests.console import bus, console
from tests.console.conftest import OPERATOR, Gateway


def dead_letter_rows(page: Page) -> Locator:
    return page.locator("table", has_text="Dead letters").locator("tbody tr")


def job_request(job_id: str, job_type: str) -> wire.JobRequest:
    return wire.JobRequest(
        job_id=job_id, type=job_type, node="web.megam.local", account="ACT1", correlation_id="c"
    )


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

    letter = dead_letter_rows(page)
    expect(letter).to_have_count(1, timeout=30_000)
    expect(letter).to_contain_text("invalid JSON")  # the reason herk gave
    expect(letter.get_by_role("button", name="Requeue")).to_have_count(0)  # not a job request
    letter.get_by_role("button", name="Discard").click()
    expect(page.get_by_text("No dead letters.")).to_be_visible(timeout=30_000)


def test_an_operator_requeues_a_dead_letter_to_herk(
    page: Page, gateway_on_rabbitmq: Gateway, amqp_url: str
) -> None:
    gateway = gateway_on_rabbitmq
    # a well-formed request for a job type this herk node does not have: herk dead-letters it
    body = wire.encode(job_request("RIP7", "local.resize"))
    bus.publish(amqp_url, [(topology.REQUESTS.name, topology.request_key("local.resize"), body)])
    console.sign_in(page, gateway.url, OPERATOR, gateway.sign_up(OPERATOR))
    page.get_by_role("link", name="Cluster").click()
    letter = dead_letter_rows(page)
    expect(letter).to_have_count(1, timeout=30_000)
    expect(letter).to_contain_text("unknown job type 'local.resize'")
    # the only herk node takes no more work, so the requeued request stays in herk.requests
    herk = page.locator("tr[data-herk]")
    herk.get_by_role("button", name="Drain").click()
    expect(herk.locator("td").nth(1)).to_have_text("draining", timeout=30_000)

    letter.get_by_role("button", name="Requeue").click()
    expect(page.get_by_role("status").filter(has_text="RIP7: requeued.")).to_be_visible()
    expect(page.get_by_text("No dead letters.")).to_be_visible(timeout=30_000)
    expect(page.locator(".dead-count")).to_have_text("0", timeout=30_000)
    expect(page.locator(".queue-depth")).to_have_text("1", timeout=30_000)
    [requeued] = bus.take(amqp_url, topology.HERK_REQUESTS.name, 1)
    assert (requeued.body, requeued.routing_key) == (body, "job.local.resize")
    assert requeued.headers[wire.REQUEUED_HEADER] == OPERATOR


def discard_with_the_api(gateway: Gateway, api_key: str, letter_id: str) -> None:
    """What ``megam cluster dead discard`` sends, again while the gateway does not find the
    letter: one a listing just handed back reaches the queue a moment later."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        [answer] = gateway.call(
            "POST",
            "/v1/cluster/deadletters/discard",
            {"ids": [letter_id]},
            email=OPERATOR,
            api_key=api_key,
        )
        if answer["ids"] == [letter_id]:
            return
    raise AssertionError(f"the gateway never found {letter_id} to discard")


def test_a_letter_handled_elsewhere_is_not_reported_requeued(
    page: Page, gateway_on_rabbitmq: Gateway, amqp_url: str
) -> None:
    gateway = gateway_on_rabbitmq
    body = wire.encode(job_request("RIP8", "local.create"))
    bus.dead_letter(amqp_url, body, "gave up after 3 attempts: exit 1")
    api_key = gateway.sign_up(OPERATOR)
    # this tab's timers stand still, so the row it shows stays while the letter goes elsewhere
    page.clock.install()
    page.clock.pause_at(time.time() + 1)
    console.sign_in(page, gateway.url, OPERATOR, api_key)
    page.get_by_role("link", name="Cluster").click()
    letter = dead_letter_rows(page)
    expect(letter).to_contain_text("gave up after 3 attempts")

    discard_with_the_api(gateway, api_key, "RIP8")
    letter.get_by_role("button", name="Requeue").click()
    expect(page.get_by_role("alert")).to_contain_text("RIP8 was not requeued.")
    expect(page.get_by_text("No dead letters.")).to_be_visible()
