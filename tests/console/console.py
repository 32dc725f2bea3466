"""What a user does in the console, step by step, shared by the browser tests."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def sign_in(page: Page, url: str, email: str, api_key: str, algorithm: str = "sha1") -> None:
    page.goto(url + "/")
    signin = page.locator("form", has=page.get_by_role("heading", name="Sign in"))
    signin.get_by_label("Email").fill(email)
    signin.get_by_label("API key").fill(api_key)
    signin.get_by_label("Signature").select_option(algorithm)
    signin.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Nodes", exact=True)).to_be_visible()


def without_webcrypto(page: Page) -> None:
    """Every document this tab opens lacks ``crypto.subtle``, as a console reached over plain
    http at a LAN address does (browsers offer WebCrypto only to HTTPS and localhost)."""
    page.add_init_script("delete Crypto.prototype.subtle;")


def add_cloud(page: Page, name: str, cloud_type: str = "local", **fields: str) -> None:
    page.get_by_role("link", name="Clouds").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Cloud type").select_option(cloud_type)
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Save cloud", exact=True).click()
    expect(page.get_by_role("status").filter(has_text=f"Cloud {name} saved")).to_be_visible()


def launch(
    page: Page, name: str, cloud: str, run_list: str = "", count: int = 1, predef: str = ""
) -> None:
    page.get_by_role("link", name="Launch", exact=True).click()
    page.get_by_label("Node name").fill(name)
    page.get_by_label("Predef cloud").select_option(value=cloud)
    if predef:
        page.get_by_label("Predef", exact=True).select_option(label=predef)
    page.get_by_label("Run list").fill(run_list)
    page.get_by_label("Number of instances").fill(str(count))
    page.get_by_role("button", name="Launch").click()
    expect(page.get_by_role("status").filter(has_text="Launch accepted")).to_be_visible()


def open_node(page: Page, name: str) -> None:
    page.get_by_role("link", name="Nodes", exact=True).click()
    page.get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()


def node_status(page: Page):
    return page.locator(".summary .node-status")


def log_lines(page: Page):
    return page.locator("ol.log li")
