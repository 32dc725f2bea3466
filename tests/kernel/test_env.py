"""megam.env: every service reads its environment variables the same way."""

from __future__ import annotations

import pytest

from megam import env

NAME = "MEGAM_TEST_SETTING"


@pytest.fixture
def variable(monkeypatch: pytest.MonkeyPatch):
    def set_to(value: str) -> None:
        monkeypatch.setenv(NAME, value)

    monkeypatch.delenv(NAME, raising=False)
    return set_to


class TestUnsetOrEmptyMeansTheDefault:
    def test_unset(self, variable) -> None:
        assert env.text(NAME, "d") == "d" and env.text(NAME) is None
        read = (env.integer(NAME, 7), env.number(NAME, 1.5), env.seconds(NAME, 2.0))
        assert read == (7, 1.5, 2.0)

    def test_empty(self, variable) -> None:
        variable("")
        assert env.text(NAME, "d") == "d"
        read = (env.integer(NAME, 7), env.number(NAME, 1.5), env.seconds(NAME, 2.0))
        assert read == (7, 1.5, 2.0)


class TestValuesAreRead:
    def test_text_is_kept_as_it_is(self, variable) -> None:
        variable(" spaced ")
        assert env.text(NAME, "d") == " spaced "

    def test_integer(self, variable) -> None:
        variable("42")
        assert env.integer(NAME, 7) == 42

    def test_number(self, variable) -> None:
        variable("0.25")
        assert env.number(NAME, 1.0) == 0.25

    def test_seconds_may_be_zero_unless_positive(self, variable) -> None:
        variable("0")
        assert env.seconds(NAME, 5.0) == 0.0
        with pytest.raises(ValueError, match=rf"^{NAME} must be positive, got '0'$"):
            env.seconds(NAME, 5.0, positive=True)


class TestABadValueNamesTheVariableAndWhatItWas:
    @pytest.mark.parametrize(
        ("read", "raw", "message"),
        [
            (lambda: env.integer(NAME, 1), "1.5", "must be an integer, got '1.5'"),
            (lambda: env.integer(NAME, 1), "many", "must be an integer, got 'many'"),
            (lambda: env.number(NAME, 1.0), "fast", "must be a number, got 'fast'"),
            (lambda: env.seconds(NAME, 1.0), "10s", "must be a number of seconds, got '10s'"),
            (lambda: env.seconds(NAME, 1.0), "-1", "must not be negative, got '-1'"),
            (lambda: env.seconds(NAME, 1.0), "nan", "must not be negative, got 'nan'"),
        ],
    )
    def test_refused(self, variable, read, raw: str, message: str) -> None:
        variable(raw)
        with pytest.raises(ValueError) as refused:
            read()
        assert str(refused.value) == f"{NAME} {message}"
