"""A node's metrics as charts: one inline SVG per metric, drawn from the gateway's samples."""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect

from tests.console import bus, console
from tests.console.conftest import Gateway
from tests.console.test_nodes import EMAIL, signed_in_with_a_local_cloud


def test_each_metric_of_a_node_is_charted(
    page: Page, gateway_on_rabbitmq: Gateway, amqp_url: str
) -> None:
    gateway = gateway_on_rabbitmq
    api_key = signed_in_with_a_local_cloud(page, gateway)
    console.launch(page, "web.megam.local", "home", "role[web]")
    account = gateway.call("GET", f"/v1/accounts/{EMAIL}", email=EMAIL, api_key=api_key)["id"]
    samples = [{"load1": 0.1 * i, "http_requests_per_min": 60.0 + 7 * i} for i in range(12)]
    bus.publish(amqp_url, bus.metric_events("web.megam.local", account, samples, time.time() - 200))

    console.open_node(page, "web.megam.local")
    charts = page.locator("figure.metric")
    expect(charts).to_have_count(2, timeout=30_000)  # the page polls every few seconds
    load = charts.filter(has_text="load1")
    expect(load.locator("svg")).to_have_attribute("aria-label", "load1: 12 samples, latest 1.10")
    expect(charts.filter(has_text="http_requests_per_min")).to_contain_text("latest 137")
    path = load.locator("path.series").get_attribute("d")
    assert path.count("L") == 11, path


def test_a_node_without_samples_says_so(page: Page, gateway: Gateway) -> None:
    signed_in_with_a_local_cloud(page, gateway)
    console.launch(page, "web.megam.local", "home", "role[web]")
    console.open_node(page, "web.megam.local")
    expect(page.get_by_text("No metric samples for this node in the last hour.")).to_be_visible()


def test_a_longer_range_shows_rolled_up_points_with_their_spread(
    page: Page, gateway_on_rabbitmq: Gateway, amqp_url: str
) -> None:
    gateway = gateway_on_rabbitmq
    api_key = signed_in_with_a_local_cloud(page, gateway)
    console.launch(page, "web.megam.local", "home", "role[web]")
    account = gateway.call("GET", f"/v1/accounts/{EMAIL}", email=EMAIL, api_key=api_key)["id"]
    three_days_ago = (time.time() // 300 - 3 * 288) * 300  # the start of a 5-minute point
    samples = [{"load1": float(i)} for i in range(6)]  # one minute: 0 … 5, mean 2.5
    bus.publish(amqp_url, bus.metric_events("web.megam.local", account, samples, three_days_ago))

    console.open_node(page, "web.megam.local")
    expect(page.get_by_text("No metric samples for this node in the last hour.")).to_be_visible()
    page.get_by_label("Show").select_option(label="Last week")
    chart = page.locator("figure.metric").filter(has_text="load1").locator("svg")
    expect(chart).to_have_attribute(
        "aria-label", "load1: 1 points of 5 min, latest 2.50", timeout=30_000
    )
    assert chart.locator("path.band").count() == 1  # low 0 to high 5


def test_long_axis_labels_fit_inside_the_chart(page: Page, gateway: Gateway) -> None:
    page.goto(gateway.url + "/")
    overflow = page.evaluate(
        """async () => {
            const { charts } = await import("/console/js/chart.js");
            const figures = charts([
                {name: "mem_total", value: 25769803776, at: "2026-01-01T00:00:00Z"},
                {name: "mem_total", value: 25769803776, at: "2026-01-01T00:00:10Z"},
                {name: "net_delta", value: -1234567.5, at: "2026-01-01T00:00:00Z"},
                {name: "net_delta", value: 99999.25, at: "2026-01-01T00:00:10Z"},
            ]);
            document.body.append(...figures);
            const texts = figures.flatMap((figure) => [...figure.querySelectorAll("text")]);
            return texts.map((text) => [text.textContent, text.getBBox().x])
                .filter(([, x]) => x < 0);
        }"""
    )
    assert overflow == []


def test_charts_draw_in_the_browser_from_iso_times(page: Page, gateway: Gateway) -> None:
    page.goto(gateway.url + "/")
    label = page.evaluate(
        """async () => {
            const { charts } = await import("/console/js/chart.js");
            const figures = charts([
                {name: "cpu", value: 3, at: "2026-01-01T00:00:10Z"},
                {name: "cpu", value: 1, at: "2026-01-01T00:00:00Z"},
            ]);
            return figures[0].querySelector("svg").getAttribute("aria-label");
        }"""
    )
    assert label == "cpu: 2 samples, latest 3"
