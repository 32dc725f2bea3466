"""The generator: waiting for the next millisecond, a clock that goes back, and lease fencing."""

from __future__ import annotations

import asyncio
import threading

import pytest

from megam.snowflake import (
    IDS_PER_MS,
    ClockMovedBackwards,
    Generator,
    MustWait,
    NotLeased,
    decode,
)
from tests.uid.conftest import START_MS, ManualClock


def use_up_millisecond(generator: Generator) -> range:
    run = generator.take(IDS_PER_MS)
    assert len(run) == IDS_PER_MS
    return run


class TestWhenAMillisecondIsUsedUp:
    def test_the_4097th_id_waits_for_the_next_millisecond(self, clock: ManualClock) -> None:
        generator = Generator(1, clock=clock)
        last = use_up_millisecond(generator)[-1]
        with pytest.raises(MustWait) as wait:
            generator.try_next_id()
        assert wait.value.seconds == 0.001
        assert generator.sequence_waits == 1
        clock.advance(1)
        following = generator.try_next_id()
        assert following > last
        assert decode(following).timestamp_ms == START_MS + 1
        assert decode(following).sequence == 0

    def test_a_batch_stops_at_the_end_of_the_millisecond(self, clock: ManualClock) -> None:
        generator = Generator(1, clock=clock)
        generator.take(4000)
        assert len(generator.take(500)) == 96

    def test_a_blocked_thread_resumes_when_the_clock_moves(self, clock: ManualClock) -> None:
        generator = Generator(1, clock=clock)
        use_up_millisecond(generator)
        result: list[int] = []
        waiter = threading.Thread(target=lambda: result.append(generator.next_id()))
        waiter.start()
        waiter.join(0.05)
        assert waiter.is_alive() and not result  # still waiting: the clock has not moved
        clock.advance(1)
        waiter.join(5)
        assert decode(result[0]).timestamp_ms == START_MS + 1

    async def test_an_async_batch_awaits_without_spinning_the_loop(
        self, clock: ManualClock
    ) -> None:
        generator = Generator(1, clock=clock)
        batch = asyncio.create_task(generator.take_async(2 * IDS_PER_MS + 10))
        await asyncio.sleep(0.05)  # 50 ms of real time while the clock stands still
        assert not batch.done()  # it may not hand out ids of a millisecond not yet begun
        assert clock.reads < 100  # a busy-wait would read the clock thousands of times
        clock.advance(1)
        await asyncio.sleep(0.01)
        assert not batch.done()  # two milliseconds are not enough for 8202 ids
        clock.advance(1)
        runs = await asyncio.wait_for(batch, 5)
        values = [value for run in runs for value in run]
        assert len(values) == 2 * IDS_PER_MS + 10
        assert values == sorted(set(values))
        assert [decode(run.start).timestamp_ms - START_MS for run in runs] == [0, 1, 2]

    async def test_async_callers_reserve_the_next_millisecond_and_wait_for_it(
        self, clock: ManualClock
    ) -> None:
        generator = Generator(1, clock=clock)
        use_up_millisecond(generator)
        reserved = generator.take(10, ahead_ms=1)
        assert decode(reserved.start).timestamp_ms == START_MS + 1
        single = asyncio.create_task(generator.next_id_async())
        await asyncio.sleep(0.02)
        assert not single.done()
        clock.advance(1)
        assert await asyncio.wait_for(single, 5) == reserved.stop  # next in the reserved ms

    def test_a_thread_waits_for_a_reserved_millisecond_to_begin(self, clock: ManualClock) -> None:
        generator = Generator(1, clock=clock)
        use_up_millisecond(generator)
        reserved = generator.take(1, ahead_ms=1)
        with pytest.raises(MustWait):
            generator.try_next_id()
        assert generator.clock_refusals == generator.clock_waits == 0  # not a clock problem
        clock.advance(1)
        assert generator.try_next_id() == reserved.start + 1


class TestWhenTheClockGoesBack:
    def test_a_small_step_back_waits_until_the_clock_catches_up(self, clock: ManualClock) -> None:
        generator = Generator(1, clock=clock, backwards_tolerance_ms=5)
        first = generator.try_next_id()
        clock.advance(-3)
        with pytest.raises(MustWait) as wait:
            generator.try_next_id()
        assert wait.value.seconds == pytest.approx(0.003)
        assert (generator.clock_waits, generator.clock_refusals) == (1, 0)
        assert generator.max_backwards_ms == 3
        clock.advance(3)  # back in the last millisecond used: it still has ids
        assert generator.try_next_id() == first + 1

    def test_a_large_step_back_is_refused_and_counted(self, clock: ManualClock) -> None:
        generator = Generator(1, clock=clock, backwards_tolerance_ms=5)
        first = generator.try_next_id()
        clock.advance(-1000)
        for _ in range(3):
            with pytest.raises(ClockMovedBackwards, match="backwards by 1000 ms"):
                generator.try_next_id()
        with pytest.raises(ClockMovedBackwards):
            generator.take(10)
        assert generator.clock_refusals == 4
        assert generator.max_backwards_ms == 1000
        clock.advance(1001)
        assert generator.try_next_id() > first  # serves again once the clock has caught up

    def test_a_blocking_caller_gets_the_refusal_instead_of_sleeping(
        self, clock: ManualClock
    ) -> None:
        generator = Generator(1, clock=clock)
        generator.next_id()
        clock.advance(-60_000)
        with pytest.raises(ClockMovedBackwards):
            generator.next_id()

    def test_a_restart_never_reuses_the_previous_holders_milliseconds(
        self, clock: ManualClock
    ) -> None:
        generator = Generator(1, clock=clock, last_timestamp_ms=START_MS)
        with pytest.raises(MustWait):
            generator.try_next_id()
        clock.advance(1)
        assert decode(generator.try_next_id()).timestamp_ms == START_MS + 1


class TestLeaseFencing:
    def test_ids_stop_at_the_horizon_until_it_is_renewed(self, clock: ManualClock) -> None:
        generator = Generator(1, clock=clock, leased_until_ms=START_MS + 10)
        generator.try_next_id()
        clock.advance(11)
        with pytest.raises(NotLeased, match="not renewed"):
            generator.try_next_id()
        generator.grant(START_MS + 100)
        assert decode(generator.try_next_id()).timestamp_ms == START_MS + 11

    def test_no_reservation_beyond_the_horizon(self, clock: ManualClock) -> None:
        generator = Generator(1, clock=clock, leased_until_ms=START_MS)
        use_up_millisecond(generator)
        with pytest.raises(MustWait):
            generator.take(1, ahead_ms=1)

    def test_revoking_stops_ids_at_once_even_inside_a_millisecond(self, clock: ManualClock) -> None:
        generator = Generator(1, clock=clock, leased_until_ms=START_MS + 1000)
        generator.take(10)
        generator.revoke("lease lost")
        with pytest.raises(NotLeased, match="lease lost"):
            generator.try_next_id()
        with pytest.raises(NotLeased):
            generator.next_id()
        assert not generator.serving

    def test_a_new_lease_may_change_the_worker_id_and_ids_keep_increasing(
        self, clock: ManualClock
    ) -> None:
        generator = Generator(1, clock=clock, leased_until_ms=START_MS + 1000)
        before = generator.take(100)
        with pytest.raises(RuntimeError, match="revoke"):
            generator.grant(START_MS + 2000, worker_id=2)
        generator.revoke("lease lost")
        generator.grant(START_MS + 2000, worker_id=2, after_ms=START_MS + 5)
        with pytest.raises(MustWait):
            generator.try_next_id()  # the previous holder of worker 2 may have used up to +5
        clock.advance(6)
        after = generator.try_next_id()
        assert after > before[-1]
        assert decode(after).worker_id == 2
        assert generator.ids_issued == 101

    def test_ids_issued_counts_every_id_handed_out(self, clock: ManualClock) -> None:
        generator = Generator(1, clock=clock)
        generator.take(4000)
        generator.try_next_id()
        clock.advance(1)
        generator.take(10)
        generator.next_id()
        assert generator.ids_issued == 4012

    def test_a_renewal_does_not_undo_a_revoke(self, clock: ManualClock) -> None:
        generator = Generator(1, clock=clock, leased_until_ms=START_MS + 10)
        generator.revoke("lease lost")
        generator.extend(START_MS + 1000)
        with pytest.raises(NotLeased, match="lease lost"):
            generator.try_next_id()
