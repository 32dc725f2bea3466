"""How an attempt of a job ended, as the worker (or the master's supervision) saw it."""

from __future__ import annotations

import dataclasses

from megam.wire import JobState, LogLine


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    state: JobState
    reason: str = ""
    exit_code: int | None = None
    duration: float = 0.0
    started: bool = True
    """False when no process of the job ever ran, so handing it back cannot repeat anything."""
    tail: tuple[LogLine, ...] = ()
    """The attempt's last log lines, not published yet: the master publishes them before the
    outcome, so the worker is free at once instead of waiting for their confirm."""
