"""The block ``megam up`` prints once all is up, and who it makes operator."""

from __future__ import annotations

from pathlib import Path

import pytest

from megam_cli import credentials
from megam_cli.ready import local_operators, ready_block

URL = "http://127.0.0.1:9000"


@pytest.fixture(autouse=True)
def credentials_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "credentials.json"
    monkeypatch.setenv("MEGAM_CREDENTIALS", str(path))
    monkeypatch.delenv("MEGAM_PROFILE", raising=False)
    return path


def test_the_block_says_where_things_are_how_to_sign_in_and_who_operates(
    credentials_file: Path,
) -> None:
    owner = credentials.Credentials(URL, "demo@megam.local", "secret-key", "demo")
    text = ready_block(
        URL, operators={"demo@megam.local"}, owner=owner, credentials_file=credentials_file
    )
    assert f"gateway   {URL}/v1" in text and f"console   {URL}/" in text
    assert "sign in   demo@megam.local" in text and str(credentials_file) in text
    assert "--profile demo accounts show --show-key" in text
    assert "operator  demo@megam.local" in text
    assert "secret-key" not in text, "the key itself is never printed"


def test_without_an_account_the_block_says_how_to_make_one(credentials_file: Path) -> None:
    text = ready_block(URL, operators=set(), owner=None, credentials_file=credentials_file)
    assert "megam accounts create" in text and "--operator EMAIL" in text


def test_profiles_for_this_gateway_and_the_demo_are_operators() -> None:
    credentials.save(credentials.Credentials("127.0.0.1:9000", "Me@Example.com", "k", "me"))
    credentials.save(credentials.Credentials("http://elsewhere:9000", "far@x.io", "k", "far"))
    operators = local_operators(URL, with_demo=True, extra=["ops@x.io"])
    assert operators == {"me@example.com", "demo@megam.local", "ops@x.io"}
    assert local_operators(URL, with_demo=False) == {"me@example.com"}


def test_an_unreadable_credentials_file_makes_nobody_an_operator(credentials_file: Path) -> None:
    credentials_file.write_bytes(b"\xff")
    assert local_operators(URL, with_demo=False) == frozenset()
