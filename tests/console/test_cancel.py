"""Cancelling a running job from its node page."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.console import console
from tests.console.conftest import Gateway
from tests.console.test_nodes import signed_in_with_a_hanging_ec2_node


def test_a_running_job_is_cancelled_from_the_node_page(page: Page, gateway: Gateway) -> None:
    signed_in_with_a_hanging_ec2_node(page, gateway, "slow.megam.local")
    job = page.locator("tr[data-job]")

    job.get_by_role("button", name="Cancel").click()

    expect(page.get_by_role("status").filter(has_text="Cancel of")).to_be_visible()
    expect(job.locator(".job-state")).to_have_text("cancelled", timeout=60_000)
    expect(job).to_contain_text("cancelled while running")
    expect(job.get_by_role("button", name="Cancel")).to_have_count(0)
    expect(console.node_status(page)).not_to_have_text("LAUNCHING")


def test_cancelling_an_ended_job_says_why_it_cannot(page: Page, gateway: Gateway) -> None:
    signed_in_with_a_hanging_ec2_node(page, gateway, "slow.megam.local")
    job = page.locator("tr[data-job]")
    job_id = job.get_attribute("data-job")
    page.evaluate(
        """async (id) => (await import("/console/js/api.js")).post(`/v1/jobs/${id}/cancel`, {})""",
        job_id,
    )
    expect(job.locator(".job-state")).to_have_text("cancelled", timeout=60_000)

    # a second cancel, as from a page that has not refreshed yet: the gateway's refusal, in words
    message = page.evaluate(
        """async (id) => {
            const api = await import("/console/js/api.js");
            try { await api.post(`/v1/jobs/${id}/cancel`, {}); return "accepted"; }
            catch (error) { return `${error.status} ${error.message}`; }
        }""",
        job_id,
    )
    assert message.startswith("409 "), message
