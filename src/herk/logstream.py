"""A job attempt's output as log events: masked, numbered, and batched (≤100 lines or ≤50 ms).

The mask (megam.secrets.Masker) covers every form herk writes a secret in, and each line of a
multi-line secret, since output arrives here a line at a time.

Runs in the worker thread. ``publish`` hands the batch to the node's event outbox and returns at
once (herk.outbox): a job never waits for the broker, even one that is away for minutes. The
outbox is bounded (memory, then disk); past its limit, batches are refused and counted, and the
job's log says how many (herk.worker), instead of the job being slowed or stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Final

from megam.secrets import Masker
from megam.wire import LogLine

MAX_BATCH_LINES: Final = 100
MAX_BATCH_DELAY: Final = 0.05


class LogStream:
    def __init__(
        self,
        publish: Callable[[list[LogLine]], None],
        secrets: Iterable[str],
        *,
        max_lines: int = MAX_BATCH_LINES,
        max_delay: float = MAX_BATCH_DELAY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publish = publish
        self._mask = Masker(secrets)
        self._max_lines = max_lines
        self._max_delay = max_delay
        self._clock = clock
        self._buffer: list[LogLine] = []
        self._first_at = 0.0
        self.seq = 0

    def line(self, stream: str, text: str) -> None:
        self.seq += 1
        if not self._buffer:
            self._first_at = self._clock()
        self._buffer.append(LogLine(self.seq, stream, self._mask(text), time.time()))
        if len(self._buffer) >= self._max_lines:
            self.flush()

    def tick(self) -> None:
        if self._buffer and self._clock() - self._first_at >= self._max_delay:
            self.flush()

    def seconds_until_flush(self) -> float:
        if not self._buffer:
            return math.inf
        return max(0.0, self._first_at + self._max_delay - self._clock())

    def flush(self) -> None:
        if self._buffer:
            self._publish(self.take())

    def take(self) -> list[LogLine]:
        """The lines not published yet, for the caller to publish (the last batch of a job)."""
        batch, self._buffer = self._buffer, []
        return batch

    def mask(self, text: str) -> str:
        return self._mask(text)
