"""Signing up and in: the api key lives in this tab only, and a wrong credential is named."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.console import console
from tests.console.conftest import Gateway


def signin_form(page: Page):
    return page.locator("form", has=page.get_by_role("heading", name="Sign in"))


def test_a_new_user_signs_up_and_is_signed_in(page: Page, gateway: Gateway) -> None:
    page.goto(gateway.url + "/")
    signup = page.locator("form", has=page.get_by_role("heading", name="Sign up"))
    signup.get_by_label("Email").fill("grace@megam.io")
    signup.get_by_role("button", name="Create account").click()

    expect(page.get_by_text("Account grace@megam.io created")).to_be_visible()
    api_key = page.get_by_test_id("new-api-key").inner_text()
    assert len(api_key) >= 16
    # the key works: the gateway accepts a signature made with it
    assert gateway.call("POST", "/v1/auth", {}, email="grace@megam.io", api_key=api_key)

    page.get_by_role("link", name="Next: add a cloud").click()
    expect(page.get_by_role("heading", name="Clouds")).to_be_visible()
    expect(page.get_by_text("grace@megam.io")).to_be_visible()


def test_the_api_key_is_kept_in_session_storage_only(page: Page, gateway: Gateway) -> None:
    api_key = gateway.sign_up("ada@megam.io")
    console.sign_in(page, gateway.url, "ada@megam.io", api_key)

    session = page.evaluate("() => sessionStorage.getItem('megam.session')")
    assert api_key in session
    assert page.evaluate("() => localStorage.length") == 0
    assert page.context.cookies() == []

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('megam.session')") is None


def test_a_wrong_api_key_is_said_to_not_match_the_email(page: Page, gateway: Gateway) -> None:
    api_key = gateway.sign_up("ada@megam.io")
    page.goto(gateway.url + "/")
    form = signin_form(page)
    form.get_by_label("Email").fill("ada@megam.io")
    form.get_by_label("API key").fill(api_key[::-1])
    form.get_by_role("button", name="Sign in").click()

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("That api key does not match the account ada@megam.io.")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('megam.session')") is None


def test_an_unknown_email_is_said_to_have_no_account(page: Page, gateway: Gateway) -> None:
    page.goto(gateway.url + "/")
    form = signin_form(page)
    form.get_by_label("Email").fill("nobody@megam.io")
    form.get_by_label("API key").fill("k" * 32)
    form.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_contain_text("There is no account for nobody@megam.io.")


def test_sha256_signatures_are_accepted_too(page: Page, gateway: Gateway) -> None:
    api_key = gateway.sign_up("ada@megam.io")
    page.goto(gateway.url + "/")
    form = signin_form(page)
    form.get_by_label("Email").fill("ada@megam.io")
    form.get_by_label("API key").fill(api_key)
    form.get_by_label("Signature").select_option("sha256")
    form.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Nodes", exact=True)).to_be_visible()


def test_signing_in_works_from_the_keyboard_alone(page: Page, gateway: Gateway) -> None:
    api_key = gateway.sign_up("ada@megam.io")
    page.goto(gateway.url + "/")
    page.keyboard.press("Tab")  # the skip link comes first
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Megam")).to_be_focused()
    page.keyboard.press("Tab")
    expect(signin_form(page).get_by_label("Email")).to_be_focused()
    page.keyboard.type("ada@megam.io")
    page.keyboard.press("Tab")
    page.keyboard.type(api_key)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Nodes", exact=True)).to_be_visible()
    # the list loads after the heading: tabbing before it would leave the page's last control
    expect(page.get_by_role("link", name="Launch one")).to_be_visible()

    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    focused = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert focused == "solid", "the focused control shows a visible outline"
