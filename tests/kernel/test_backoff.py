"""megam.backoff: the one exponential backoff every retry loop uses."""

import pytest

from megam.backoff import Backoff


def test_delays_double_up_to_the_cap():
    backoff = Backoff(first=0.5, cap=3.0)
    assert [backoff.delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_reset_starts_again_from_the_first_delay():
    backoff = Backoff(first=0.1, cap=5.0)
    backoff.delay()
    backoff.delay()
    backoff.reset()
    assert backoff.upcoming == 0.1


def test_the_delay_after_a_count_of_failures_follows_the_same_curve():
    backoff = Backoff(first=0.5, cap=30.0)
    assert [backoff.after(n) for n in (0, 1, 2, 5, 6, 7)] == [0.5, 1.0, 2.0, 16.0, 30.0, 30.0]
    assert backoff.after(5000) == 30.0  # no overflow however long the outage


def test_equal_jitter_keeps_half_of_each_delay_fixed():
    low = Backoff(first=2.0, cap=8.0, jitter=True, uniform=lambda: 0.0)
    high = Backoff(first=2.0, cap=8.0, jitter=True, uniform=lambda: 1.0)
    assert [low.delay() for _ in range(3)] == [1.0, 2.0, 4.0]
    assert [high.delay() for _ in range(3)] == [2.0, 4.0, 8.0]


async def test_wait_sleeps_the_delay_it_returns():
    backoff = Backoff(first=0.001, cap=0.002)
    assert await backoff.wait() == 0.001
    assert await backoff.wait() == 0.002


@pytest.mark.parametrize(("first", "cap", "factor"), [(0, 1, 2), (2, 1, 2), (1, 2, 0.5)])
def test_a_backoff_that_could_not_back_off_is_refused(first, cap, factor):
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(first=first, cap=cap, factor=factor)
