"""Twitter Snowflake ids: 41-bit ms since 1288834974657 | 5-bit datacenter | 5-bit worker | 12-bit
sequence. The layout is part of the wire contract: every Megam id is one of these, rendered as
``PREFIX + decimal`` (``RIP431662859257118720``).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Final

EPOCH_MS: Final = 1288834974657
WORKER_BITS: Final = 5
DATACENTER_BITS: Final = 5
SEQUENCE_BITS: Final = 12
MAX_WORKER: Final = (1 << WORKER_BITS) - 1
MAX_DATACENTER: Final = (1 << DATACENTER_BITS) - 1
SEQUENCE_MASK: Final = (1 << SEQUENCE_BITS) - 1
WORKER_SHIFT: Final = SEQUENCE_BITS
DATACENTER_SHIFT: Final = SEQUENCE_BITS + WORKER_BITS
TIMESTAMP_SHIFT: Final = SEQUENCE_BITS + WORKER_BITS + DATACENTER_BITS


class ClockMovedBackwards(RuntimeError):
    """The clock went back further than the tolerance: issuing ids could duplicate one."""


@dataclasses.dataclass(frozen=True, slots=True)
class DecodedId:
    timestamp_ms: int
    datacenter_id: int
    worker_id: int
    sequence: int


def decode(snowflake: int) -> DecodedId:
    return DecodedId(
        timestamp_ms=(snowflake >> TIMESTAMP_SHIFT) + EPOCH_MS,
        datacenter_id=(snowflake >> DATACENTER_SHIFT) & MAX_DATACENTER,
        worker_id=(snowflake >> WORKER_SHIFT) & MAX_WORKER,
        sequence=snowflake & SEQUENCE_MASK,
    )


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Generator:
    """Strictly increasing ids for one (datacenter, worker); thread-safe."""

    def __init__(
        self,
        worker_id: int,
        datacenter_id: int = 0,
        *,
        clock: Callable[[], int] = _wall_ms,
        backwards_tolerance_ms: int = 5,
    ) -> None:
        if not 0 <= worker_id <= MAX_WORKER:
            raise ValueError(f"worker id must be in 0..{MAX_WORKER}")
        if not 0 <= datacenter_id <= MAX_DATACENTER:
            raise ValueError(f"datacenter id must be in 0..{MAX_DATACENTER}")
        self.worker_id = worker_id
        self.datacenter_id = datacenter_id
        self._clock = clock
        self._tolerance = backwards_tolerance_ms
        self._node_bits = (datacenter_id << DATACENTER_SHIFT) | (worker_id << WORKER_SHIFT)
        self._last_ms = -1
        self._sequence = 0
        self._lock = threading.Lock()

    def next_id(self) -> int:
        with self._lock:
            now = self._clock()
            if now < self._last_ms:
                if self._last_ms - now > self._tolerance:
                    raise ClockMovedBackwards(
                        f"clock moved backwards by {self._last_ms - now} ms; refusing to issue ids"
                    )
                now = self._last_ms
            if now == self._last_ms:
                self._sequence = (self._sequence + 1) & SEQUENCE_MASK
                if self._sequence == 0:
                    while now <= self._last_ms:
                        time.sleep(0.0001)
                        now = self._clock()
            else:
                self._sequence = 0
            self._last_ms = now
            return ((now - EPOCH_MS) << TIMESTAMP_SHIFT) | self._node_bits | self._sequence
