"""Launching and watching nodes: live status, job history, the live log tail and delete."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.console import console
from tests.console.conftest import Gateway

EMAIL = "ada@megam.io"


def signed_in_with_a_local_cloud(page: Page, gateway: Gateway) -> str:
    api_key = gateway.sign_up(EMAIL)
    console.sign_in(page, gateway.url, EMAIL, api_key)
    console.add_cloud(page, "home", "local")
    return api_key


def test_launching_two_local_nodes_shows_both_running(page: Page, gateway: Gateway) -> None:
    signed_in_with_a_local_cloud(page, gateway)
    console.launch(page, "web.megam.local", "home", "recipe[hello]", count=2, predef="redis")

    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    for name in ("web1.megam.local", "web2.megam.local"):
        row = page.locator(f'tr[data-node="{name}"]')
        expect(row.locator(".node-status")).to_have_text("RUNNING", timeout=60_000)

    console.open_node(page, "web1.megam.local")
    job = page.locator("tr[data-job]")
    expect(job.locator(".job-state")).to_have_text("succeeded")
    expect(job).to_contain_text(re.compile(r"\d+(\.\d)? (ms|s)"))  # its duration
    # the predef's role comes first in the run list, then the user's entries
    expect(console.log_lines(page).filter(has_text="applied role[redis]")).to_have_count(1)
    expect(console.log_lines(page).filter(has_text="applied recipe[hello]")).to_have_count(1)


def test_a_bad_run_list_entry_is_refused_before_sending(page: Page, gateway: Gateway) -> None:
    signed_in_with_a_local_cloud(page, gateway)
    page.get_by_role("link", name="Launch", exact=True).click()
    page.get_by_label("Node name").fill("web.megam.local")
    page.get_by_label("Run list").fill("nginx")
    page.get_by_role("button", name="Launch").click()
    expect(page.get_by_role("alert")).to_contain_text('"nginx" is not a run list entry.')


def test_the_gateways_refusal_is_shown_in_its_words(page: Page, gateway: Gateway) -> None:
    signed_in_with_a_local_cloud(page, gateway)
    page.get_by_role("link", name="Launch", exact=True).click()
    page.get_by_label("Node name").fill("Not A Valid Name!")
    page.get_by_role("button", name="Launch").click()
    expect(page.get_by_role("alert")).to_contain_text("node_name")


def signed_in_with_a_hanging_ec2_node(page: Page, gateway: Gateway, name: str) -> str:
    """An ec2 node whose create job runs until cancelled (the fake knife hangs)."""
    api_key = signed_in_with_a_local_cloud(page, gateway)
    console.add_cloud(
        page,
        "aws",
        "ec2",
        Image="ami-0abc",
        Flavor="t2.micro",
        Region="us-east-1",
        **{"SSH key": "ada", "Credentials": "aws_access_key_id=AKIA\naws_secret_access_key=s3"},
    )
    console.launch(page, name, "aws", "role[web]")
    console.open_node(page, name)
    expect(console.log_lines(page).filter(has_text="Waiting for EC2")).to_have_count(1)
    expect(page.locator("tr[data-job] .job-state")).to_have_text("running")
    return api_key


def test_a_log_line_appears_live_while_the_job_runs(page: Page, gateway: Gateway) -> None:
    signed_in_with_a_hanging_ec2_node(page, gateway, "slow.megam.local")
    create_id = page.locator("tr[data-job]").get_attribute("data-job")
    create = page.locator(f'tr[data-job="{create_id}"]')
    expect(console.log_lines(page).filter(has_text="terminate")).to_have_count(0)

    page.get_by_role("button", name="Delete node…").click()
    page.get_by_role("button", name="Yes, delete slow.megam.local").click()

    # the delete job's lines arrive on the open connection while the create job still runs
    expect(
        console.log_lines(page).filter(has_text="Waiting for the server to terminate")
    ).to_have_count(1)
    expect(create.locator(".job-state")).to_have_text("running")
    expect(page.locator(".tail-state")).to_have_text("live")
    assert page.evaluate("() => window.megamConsole.tail.connections") == 1


def test_the_tail_resumes_after_a_drop_without_gap_or_repeat(page: Page, gateway: Gateway) -> None:
    api_key = signed_in_with_a_local_cloud(page, gateway)
    console.launch(page, "web.megam.local", "home", "role[web]")
    console.open_node(page, "web.megam.local")
    expect(console.node_status(page)).to_have_text("RUNNING", timeout=60_000)
    expect(console.log_lines(page).filter(has_text="succeeded: exit code 0")).to_have_count(1)

    # the network goes away: the connection drops and reconnecting fails until it is back
    page.route("**/logs/stream*", lambda route: route.abort("internetdisconnected"))
    page.evaluate("() => window.megamConsole.tail.drop()")
    expect(page.locator(".tail-state")).to_have_text("reconnecting")

    # meanwhile the node is deleted: all its delete job's lines are written while we are away
    gateway.call(
        "POST",
        "/v1/requests/content",
        {"node_name": "web.megam.local", "req_type": "delete"},
        email=EMAIL,
        api_key=api_key,
    )
    archived = wait_for_lines(gateway, api_key, "web.megam.local", "succeeded: exit code 0", 2)
    offline = console.log_lines(page).filter(has_text="deleted").count()
    assert offline == 0, "nothing arrives while the network is away"

    page.unroute("**/logs/stream*")
    expect(page.locator(".tail-state")).to_have_text("live")
    expect(console.log_lines(page)).to_have_count(len(archived))

    shown = page.eval_on_selector_all(
        "ol.log li",
        "items => items.map(li => [Number(li.dataset.id), li.dataset.job, Number(li.dataset.seq)])",
    )
    assert [line_id for line_id, _, _ in shown] == [line["id"] for line in archived]
    for job in {job for _, job, _ in shown}:
        seqs = [seq for _, j, seq in shown if j == job]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"job {job}: {seqs}"
    assert page.evaluate("() => window.megamConsole.tail.connections") >= 2


def test_deleting_a_node_asks_first_then_follows_it_live(page: Page, gateway: Gateway) -> None:
    signed_in_with_a_local_cloud(page, gateway)
    console.launch(page, "web.megam.local", "home", "role[web]")
    console.open_node(page, "web.megam.local")
    expect(console.node_status(page)).to_have_text("RUNNING", timeout=60_000)

    page.get_by_role("button", name="Delete node…").click()
    page.get_by_role("button", name="Keep it").click()
    expect(page.get_by_role("button", name="Yes, delete web.megam.local")).to_have_count(0)

    page.get_by_role("button", name="Delete node…").click()
    page.get_by_role("button", name="Yes, delete web.megam.local").click()
    expect(console.log_lines(page).filter(has_text="node web.megam.local deleted")).to_have_count(
        1, timeout=60_000
    )
    expect(console.node_status(page)).to_have_text("DELETED")


def wait_for_lines(
    gateway: Gateway, api_key: str, node: str, text: str, times: int
) -> list[dict[str, object]]:
    """The node's archived lines once ``text`` occurs ``times`` times (bounded wait)."""
    import time

    deadline = time.monotonic() + 60
    while True:
        lines = gateway.call(
            "GET", f"/v1/nodes/{node}/logs?tail=1000", email=EMAIL, api_key=api_key
        )["results"]
        if sum(text in line["text"] for line in lines) >= times:
            return lines
        assert time.monotonic() < deadline, f"{text!r} x{times} never archived: {lines}"
        time.sleep(0.2)
