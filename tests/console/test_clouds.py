"""Cloud settings: predef clouds with secrets that never come back, cloud tools, ssh keys."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.console import console
from tests.console.conftest import Gateway
from tests.console.test_nodes import EMAIL


def test_a_cloud_keeps_its_credentials_out_of_sight(page: Page, gateway: Gateway) -> None:
    console.sign_in(page, gateway.url, EMAIL, gateway.sign_up(EMAIL))
    console.add_cloud(
        page,
        "aws",
        "ec2",
        Image="ami-0abc",
        Flavor="t2.micro",
        Credentials="aws_access_key_id=AKIA\naws_secret_access_key=TOPSECRET42",
    )
    row = page.locator("table", has_text="Your predef clouds").locator("tbody tr")
    expect(row).to_contain_text("ami-0abc")
    expect(row).to_contain_text("stored")
    expect(page.get_by_label("Credentials")).to_have_value("")
    assert "TOPSECRET42" not in page.content()


def test_the_gateways_refusal_of_a_cloud_is_shown_in_its_words(
    page: Page, gateway: Gateway
) -> None:
    console.sign_in(page, gateway.url, EMAIL, gateway.sign_up(EMAIL))
    page.get_by_role("link", name="Clouds").click()
    page.get_by_label("Name", exact=True).fill("aws")
    page.get_by_label("Cloud type").select_option("ec2")
    page.get_by_role("button", name="Save cloud", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("needs spec.image and spec.flavor")


def test_a_malformed_credentials_line_is_refused_in_words(page: Page, gateway: Gateway) -> None:
    console.sign_in(page, gateway.url, EMAIL, gateway.sign_up(EMAIL))
    page.get_by_role("link", name="Clouds").click()
    page.get_by_label("Name", exact=True).fill("aws")
    page.get_by_label("Credentials").fill("just-a-secret")
    page.get_by_role("button", name="Save cloud", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text('"just-a-secret" is not name=value')


def test_the_cloud_tools_are_listed(page: Page, gateway: Gateway) -> None:
    console.sign_in(page, gateway.url, EMAIL, gateway.sign_up(EMAIL))
    page.get_by_role("link", name="Clouds").click()
    tools = page.locator("table", has_text="Cloud tools")
    expect(tools.locator("tbody tr").first).to_contain_text("knife")
    expect(tools).to_contain_text("ec2")


def test_an_ssh_key_is_added_and_its_private_half_never_shown(page: Page, gateway: Gateway) -> None:
    console.sign_in(page, gateway.url, EMAIL, gateway.sign_up(EMAIL))
    page.get_by_role("link", name="Clouds").click()
    page.get_by_label("Key name").fill("ada-laptop")
    page.get_by_label("Public key").fill("ssh-ed25519 AAAAC3Nza ada@laptop")
    page.get_by_label("Private key").fill("-----BEGIN OPENSSH PRIVATE KEY----- SECRETBITS")
    page.get_by_role("button", name="Save ssh key").click()
    row = page.locator("table", has_text="SSH keys").locator("tbody tr")
    expect(row).to_contain_text("ada-laptop")
    assert "SECRETBITS" not in page.content()
