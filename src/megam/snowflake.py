"""Twitter Snowflake ids: 41-bit ms since 1288834974657 | 5-bit datacenter | 5-bit worker | 12-bit
sequence. The layout is part of the wire contract: every Megam id is one of these, rendered as
``PREFIX + decimal`` (``RIP431662859257118720``).

Within one millisecond the sequence is the lowest field, so the ids a worker issues in that
millisecond are consecutive integers: a batch is a ``range``, computed, not generated one by one.

When a millisecond's 4,096 ids are gone, or the clock is a little behind, the non-blocking calls
raise :class:`MustWait` saying how long; ``next_id`` waits in the calling thread, the ``*_async``
methods ``await asyncio.sleep`` so that an event loop stays free. A clock that went back further
than the tolerance is refused with :class:`ClockMovedBackwards`: waiting for it could take minutes.

Generators that serve a worker id leased from the cluster (see the ``uid`` service) are fenced by
the lease: :meth:`Generator.grant` allows timestamps up to a horizon that the lease holder has
persisted first, and :meth:`Generator.revoke` stops issuing at once when the lease is lost.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import itertools
import operator
import threading
import time
from collections.abc import Callable, Iterator
from typing import Final

EPOCH_MS: Final = 1288834974657
WORKER_BITS: Final = 5
DATACENTER_BITS: Final = 5
SEQUENCE_BITS: Final = 12
TIMESTAMP_BITS: Final = 41
MAX_WORKER: Final = (1 << WORKER_BITS) - 1
MAX_DATACENTER: Final = (1 << DATACENTER_BITS) - 1
SEQUENCE_MASK: Final = (1 << SEQUENCE_BITS) - 1
IDS_PER_MS: Final = 1 << SEQUENCE_BITS
MAX_TIMESTAMP_OFFSET: Final = (1 << TIMESTAMP_BITS) - 1
MAX_ID: Final = (1 << (TIMESTAMP_BITS + DATACENTER_BITS + WORKER_BITS + SEQUENCE_BITS)) - 1
WORKER_SHIFT: Final = SEQUENCE_BITS
DATACENTER_SHIFT: Final = SEQUENCE_BITS + WORKER_BITS
TIMESTAMP_SHIFT: Final = SEQUENCE_BITS + WORKER_BITS + DATACENTER_BITS
LAYOUT_LIMIT_PER_SECOND: Final = IDS_PER_MS * 1000
"""The most ids one (datacenter, worker) can issue per second: 4,096,000."""

DEFAULT_BACKWARDS_TOLERANCE_MS: Final = 5
_UNLIMITED: Final = EPOCH_MS + MAX_TIMESTAMP_OFFSET


class IdUnavailable(RuntimeError):
    """No id can be issued now; waiting would not help (the service answers 503)."""


class ClockMovedBackwards(IdUnavailable):
    """The clock went back further than the tolerance: issuing ids could duplicate one."""

    def __init__(self, behind_ms: int) -> None:
        super().__init__(
            f"clock moved backwards by {behind_ms} ms (more than the tolerance); "
            "refusing to issue ids until it catches up"
        )
        self.behind_ms = behind_ms


class NotLeased(IdUnavailable):
    """The worker id's lease was lost, or not renewed in time; issuing could duplicate ids."""


class MustWait(Exception):
    """No id this instant: retry after ``seconds`` (the sequence ran out, or the clock lags)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry in {seconds:.3f} s")
        self.seconds = seconds


@dataclasses.dataclass(frozen=True, slots=True)
class DecodedId:
    timestamp_ms: int
    datacenter_id: int
    worker_id: int
    sequence: int

    @property
    def time(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.timestamp_ms / 1000, tz=datetime.UTC)


def decode(snowflake: int) -> DecodedId:
    if not 0 <= snowflake <= MAX_ID:
        raise ValueError(f"a snowflake id is an integer in 0..{MAX_ID}, got {snowflake}")
    return DecodedId(
        timestamp_ms=(snowflake >> TIMESTAMP_SHIFT) + EPOCH_MS,
        datacenter_id=(snowflake >> DATACENTER_SHIFT) & MAX_DATACENTER,
        worker_id=(snowflake >> WORKER_SHIFT) & MAX_WORKER,
        sequence=snowflake & SEQUENCE_MASK,
    )


def encode(timestamp_ms: int, datacenter_id: int, worker_id: int, sequence: int) -> int:
    """The id with these fields; the inverse of :func:`decode`."""
    if not EPOCH_MS <= timestamp_ms <= EPOCH_MS + MAX_TIMESTAMP_OFFSET:
        raise ValueError(f"timestamp {timestamp_ms} ms is outside the 41-bit range of the epoch")
    _check_node(worker_id, datacenter_id)
    if not 0 <= sequence <= SEQUENCE_MASK:
        raise ValueError(f"sequence must be in 0..{SEQUENCE_MASK}")
    return (
        ((timestamp_ms - EPOCH_MS) << TIMESTAMP_SHIFT)
        | (datacenter_id << DATACENTER_SHIFT)
        | (worker_id << WORKER_SHIFT)
        | sequence
    )


def _check_node(worker_id: int, datacenter_id: int) -> None:
    if not 0 <= worker_id <= MAX_WORKER:
        raise ValueError(f"worker id must be in 0..{MAX_WORKER}, got {worker_id}")
    if not 0 <= datacenter_id <= MAX_DATACENTER:
        raise ValueError(f"datacenter id must be in 0..{MAX_DATACENTER}, got {datacenter_id}")


_LOOP_TICK_S: Final = 0.001
_SPIN_AT_MOST_S: Final = 0.001


async def _pause(seconds: float) -> None:
    # uvloop rounds timers to whole milliseconds and runs anything under half a millisecond at
    # once; sleeping at least one tick keeps a waiting task from spinning on the loop.
    if seconds > 0:
        await asyncio.sleep(max(seconds, _LOOP_TICK_S))


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Generator:
    """Strictly increasing ids for one (datacenter, worker); safe across threads and tasks.

    ``clock`` returns wall-clock milliseconds (injectable for tests). ``last_timestamp_ms`` is the
    highest timestamp a previous holder of this worker id may have used: ids start after it.
    ``leased_until_ms`` enables lease fencing (see :meth:`grant`); None means no lease checks.

    How it stays correct without a lock on the hot path: the current millisecond and an iterator
    over its remaining ids are published together as one tuple. ``next()`` on a range iterator is
    a single C call, atomic under the GIL, so two threads never get the same id; a batch takes its
    ids with one ``list(islice(...))``, also a single C call. Everything else (a new millisecond,
    leases, counters) happens under the lock and replaces the tuple as a whole.
    """

    def __init__(
        self,
        worker_id: int,
        datacenter_id: int = 0,
        *,
        clock: Callable[[], int] = wall_ms,
        backwards_tolerance_ms: int = DEFAULT_BACKWARDS_TOLERANCE_MS,
        last_timestamp_ms: int = -1,
        leased_until_ms: int | None = None,
    ) -> None:
        _check_node(worker_id, datacenter_id)
        if backwards_tolerance_ms < 0:
            raise ValueError("the backwards tolerance cannot be negative")
        self.datacenter_id = datacenter_id
        self.backwards_tolerance_ms = backwards_tolerance_ms
        # The wall clock is read as time_ns() // 1_000_000 inline: a Python-level clock function
        # would add a frame to every id, and the hot path is only a couple of hundred nanoseconds.
        self._clock_raw, self._clock_unit = (
            (time.time_ns, 1_000_000) if clock is wall_ms else (clock, 1)
        )
        self._lock = threading.Lock()
        self._worker_id = worker_id
        self._node_bits = 0
        self._bind(worker_id)
        self._state: tuple[int, Iterator[int]] = (last_timestamp_ms, iter(()))
        self._ahead_of_clock = 0  # 1 while the current millisecond is a reservation of the next
        self._until_ms = _UNLIMITED if leased_until_ms is None else leased_until_ms
        self._revoked: str | None = None
        # (ids a millisecond had, its iterator): ids issued = had - left. Kept for a while after
        # the millisecond ends, because a caller that read the tuple just before may still draw.
        self._tallies: collections.deque[tuple[int, Iterator[int]]] = collections.deque()
        self._issued_earlier = 0
        self.sequence_waits = 0
        self.clock_waits = 0
        self.clock_refusals = 0
        self.max_backwards_ms = 0

    # -- issuing ------------------------------------------------------------------------------

    def next_id(self) -> int:
        """The next id; blocks the calling thread when it must wait (never call on a loop).

        The rest of a used-up millisecond is spun away, as Twitter's ``tilNextMillis`` does:
        sleeping gives the core away, and on a busy machine it comes back milliseconds late.
        Longer waits (the clock a little behind) sleep.
        """
        while True:
            ms, ids = self._state
            if self._clock_raw() // self._clock_unit == ms:
                issued = next(ids, None)
                if issued is not None:
                    return issued
            try:
                return self._take(1, 0).start
            except MustWait as wait:
                if wait.seconds > _SPIN_AT_MOST_S:
                    time.sleep(wait.seconds)
                    continue
                deadline = time.perf_counter() + wait.seconds
                while time.perf_counter() < deadline:
                    pass

    def try_next_id(self) -> int:
        """The next id, or :class:`MustWait`."""
        ms, ids = self._state
        if self._clock_raw() // self._clock_unit == ms:
            issued = next(ids, None)
            if issued is not None:
                return issued
        return self._take(1, 0).start

    def take(self, count: int, *, ahead_ms: int = 0) -> range:
        """Up to ``count`` consecutive ids from one millisecond; or :class:`MustWait`.

        With ``ahead_ms=1`` a caller that would wait anyway may reserve ids of the millisecond
        after a used-up one; it must not hand them out before that millisecond begins (as
        :meth:`take_async` does). A reservation is thus a wait that cannot miss its millisecond.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        if ahead_ms not in (0, 1):
            raise ValueError("ids can be reserved at most one millisecond ahead")
        return self._take(count, ahead_ms)

    async def next_id_async(self) -> int:
        try:
            return self.try_next_id()
        except MustWait:
            runs = await self.take_async(1)
            return runs[0].start

    async def take_async(self, count: int) -> list[range]:
        """Exactly ``count`` ids as increasing runs of consecutive ids (one per millisecond).

        Awaits (never blocks the loop) when milliseconds run out, and returns only once the
        clock has reached the timestamp of every id returned.
        """
        runs: list[range] = []
        while count > 0:
            try:
                run = self.take(count, ahead_ms=1)
            except MustWait as wait:
                await _pause(wait.seconds)
                continue
            runs.append(run)
            count -= len(run)
        release_ms = (runs[-1].start >> TIMESTAMP_SHIFT) + EPOCH_MS
        while (now := self._clock_raw() // self._clock_unit) < release_ms:
            # Timers tick in whole milliseconds and may fire a little early: check again.
            await _pause(self._seconds_until(release_ms, now))
        return runs

    def _take(self, count: int, ahead_ms: int) -> range:
        with self._lock:
            now = self._clock_raw() // self._clock_unit
            ms, ids = self._state
            if ms - ahead_ms <= now <= ms:
                run = _draw(ids, min(count, IDS_PER_MS))
                if run:
                    return run
            return self._open_ms(now, count, ahead_ms)

    def _open_ms(self, now: int, count: int, ahead_ms: int) -> range:
        """Called with the lock held when the current millisecond cannot serve the request."""
        if self._revoked is not None:
            raise NotLeased(self._revoked)
        ms = self._state[0]
        if now > ms:
            return self._start_ms(now, now, count)
        behind = ms - now
        if behind == 0 and ahead_ms and now + 1 <= self._until_ms:
            return self._start_ms(now + 1, now, count)
        if behind <= self._ahead_of_clock:  # the current or reserved millisecond is used up
            self.sequence_waits += 1
            raise MustWait(self._seconds_until(now + 1, now))
        clock_behind = behind - self._ahead_of_clock
        self.max_backwards_ms = max(self.max_backwards_ms, clock_behind)
        if clock_behind > self.backwards_tolerance_ms:
            self.clock_refusals += 1
            raise ClockMovedBackwards(clock_behind)
        self.clock_waits += 1
        # The last millisecond used may still have ids left: wait until the clock is back in it.
        raise MustWait(self._seconds_until(max(ms - ahead_ms, now + 1), now))

    def _start_ms(self, ms: int, now: int, count: int) -> range:
        if ms > self._until_ms:
            raise NotLeased(
                f"the lease of worker {self._worker_id} was not renewed in time; "
                "refusing to issue ids past its horizon"
            )
        if ms - EPOCH_MS > MAX_TIMESTAMP_OFFSET:
            raise IdUnavailable("the 41-bit timestamp of the snowflake layout has run out")
        base = ((ms - EPOCH_MS) << TIMESTAMP_SHIFT) | self._node_bits
        first = range(base, base + min(count, IDS_PER_MS))
        self._publish(ms, IDS_PER_MS, iter(range(first.stop, base + IDS_PER_MS)))
        self._ahead_of_clock = ms - now
        return first

    def _publish(self, ms: int, had: int, ids: Iterator[int]) -> None:
        if len(self._tallies) == _TALLIES_KEPT:
            old_had, old_ids = self._tallies.popleft()
            self._issued_earlier += old_had - operator.length_hint(old_ids)
        self._tallies.append((had, ids))
        self._state = (ms, ids)

    def _seconds_until(self, target_ms: int, now_ms: int) -> float:
        if self._clock_unit == 1:  # an injected millisecond clock: whole milliseconds
            return (target_ms - now_ms) / 1000
        return max(target_ms * 1_000_000 - self._clock_raw(), 0) / 1e9

    # -- lease fencing ------------------------------------------------------------------------

    def grant(self, until_ms: int, *, worker_id: int | None = None, after_ms: int = -1) -> None:
        """Allow timestamps up to ``until_ms`` (the lease holder persisted it first).

        ``worker_id`` rebinds a revoked generator to a newly leased id; ``after_ms`` is the
        previous holder's horizon: only later milliseconds are used.
        """
        with self._lock:
            if worker_id is not None and worker_id != self._worker_id:
                if self._revoked is None:
                    raise RuntimeError("revoke the current lease before changing the worker id")
                _check_node(worker_id, self.datacenter_id)
                self._bind(worker_id)
            ms = self._state[0]
            if after_ms >= ms:
                self._publish(after_ms, 0, iter(()))
                self._ahead_of_clock = 0
            self._until_ms = until_ms
            self._revoked = None

    def extend(self, until_ms: int) -> None:
        """Move the horizon on (a renewal); unlike :meth:`grant` it does not undo a revoke."""
        with self._lock:
            self._until_ms = max(self._until_ms, until_ms)

    def revoke(self, reason: str) -> None:
        """Stop issuing now, even inside the current millisecond."""
        with self._lock:
            self._revoked = reason
            self._publish(self._state[0], 0, iter(()))

    def _bind(self, worker_id: int) -> None:
        self._worker_id = worker_id
        self._node_bits = (self.datacenter_id << DATACENTER_SHIFT) | (worker_id << WORKER_SHIFT)

    # -- state for metrics and persistence ----------------------------------------------------

    @property
    def worker_id(self) -> int:
        return self._worker_id

    @property
    def serving(self) -> bool:
        return self._revoked is None

    @property
    def revoked_reason(self) -> str | None:
        return self._revoked

    @property
    def last_timestamp_ms(self) -> int:
        """The latest millisecond ids were issued in (or reserved by a previous holder)."""
        return self._state[0]

    @property
    def ids_issued(self) -> int:
        with self._lock:
            return self._issued_earlier + sum(
                had - operator.length_hint(ids) for had, ids in self._tallies
            )


_TALLIES_KEPT: Final = 1024
"""Milliseconds whose iterators are kept for counting: a caller would have to stall for over a
thousand milliseconds of issuing between reading the tuple and drawing for an id to go uncounted."""


def _draw(ids: Iterator[int], count: int) -> range:
    """Up to ``count`` ids from ``ids`` in one C call, so no other thread draws in between."""
    drawn = list(itertools.islice(ids, count))
    if not drawn:
        return range(0)
    return range(drawn[0], drawn[-1] + 1)
