"""Profiles in the credentials file: which one is used, what saving keeps, the first format."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from megam_cli import credentials
from megam_cli.credentials import Credentials


@pytest.fixture
def path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MEGAM_URL", "MEGAM_EMAIL", "MEGAM_API_KEY", "MEGAM_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    target = tmp_path / "credentials.json"
    monkeypatch.setenv("MEGAM_CREDENTIALS", str(target))
    return target


class TestChoosingAProfile:
    def test_the_flag_wins_over_the_environment_which_wins_over_the_file(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        credentials.save(Credentials("http://a:1", "a@x.io", "ka", "a"))
        credentials.save(Credentials("http://b:1", "b@x.io", "kb", "b"))
        assert credentials.load().email == "b@x.io", "the last saved is current"
        monkeypatch.setenv("MEGAM_PROFILE", "a")
        assert credentials.load().email == "a@x.io"
        assert credentials.load(profile="b").email == "b@x.io"

    def test_environment_values_win_over_the_profiles(
        self, path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        credentials.save(Credentials("http://a:1", "a@x.io", "ka", "a"))
        monkeypatch.setenv("MEGAM_API_KEY", "from-env")
        assert credentials.load().api_key == "from-env"

    def test_an_unknown_profile_has_no_one_signed_in(self, path: Path) -> None:
        found = credentials.load(profile="nobody")
        assert (found.email, found.api_key, found.profile) == (None, None, "nobody")


class TestSaving:
    def test_saving_keeps_the_other_profiles_and_the_file_private(self, path: Path) -> None:
        credentials.save(Credentials("http://a:1", "a@x.io", "ka", "a"))
        credentials.save(Credentials("http://b:1", "b@x.io", "kb", "b"), make_current=False)
        stored = credentials.read_profiles()
        assert set(stored.profiles) == {"a", "b"} and stored.current == "a"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def test_only_a_different_account_conflicts(self, path: Path) -> None:
        same = Credentials("http://a:1", "a@x.io", "ka", "a")
        credentials.save(same)
        stored = credentials.read_profiles()
        assert credentials.conflicting(same, stored) is None
        other = Credentials("http://a:1", "z@x.io", "kz", "a")
        assert credentials.conflicting(other, stored) == same


class TestTheFile:
    def test_the_first_format_reads_as_the_default_profile(self, path: Path) -> None:
        path.write_text(json.dumps({"url": "http://h:9", "email": "old@x.io", "api_key": "k"}))
        found = credentials.load()
        assert (found.email, found.profile, found.url) == ("old@x.io", "default", "http://h:9")

    def test_bytes_that_are_not_json_are_a_one_line_error(self, path: Path) -> None:
        path.write_bytes(b"\x00\xff{")
        with pytest.raises(ValueError, match="not a credentials file"):
            credentials.load()


class TestGatewayUrls:
    @pytest.mark.parametrize(
        ("typed", "meant"),
        [
            ("127.0.0.1:9460", "http://127.0.0.1:9460"),
            ("http://127.0.0.1:9460/", "http://127.0.0.1:9460"),
            ("https://megam.example.com/api", "https://megam.example.com/api"),
            ("localhost", "http://localhost"),
        ],
    )
    def test_what_a_user_types_is_understood(self, typed: str, meant: str) -> None:
        assert credentials.gateway_url(typed) == meant

    @pytest.mark.parametrize("typed", ["127.0.0.1:notaport", "ftp://h:21", "http://", ":9000"])
    def test_what_is_not_a_url_says_so(self, typed: str) -> None:
        with pytest.raises(ValueError, match="not a gateway URL"):
            credentials.gateway_url(typed)
