"""tests/polling.py: the one "poll until" the suites share."""

from __future__ import annotations

import pytest

from tests.polling import poll_until


async def test_returns_what_the_check_returned_once_it_is_truthy() -> None:
    answers = iter([None, 0, [], "ready"])
    assert await poll_until(lambda: next(answers), every=0) == "ready"


async def test_an_async_check_is_awaited() -> None:
    calls = []

    async def check() -> int:
        calls.append(1)
        return len(calls) if len(calls) == 3 else 0

    assert await poll_until(check, every=0) == 3


async def test_a_condition_that_never_holds_fails_saying_what_was_awaited() -> None:
    with pytest.raises(AssertionError, match=r"^timed out after 0.05 s waiting for the moon$"):
        await poll_until(lambda: False, "the moon", timeout=0.05)
