"""The handle through which the master (event loop) steers a job a worker thread is running.

The worker's runner owns the subprocess and polls this handle; the master only sets flags. The one
exception is :meth:`JobControl.kill_now`, for a worker thread that no longer polls (stuck).
"""

from __future__ import annotations

import enum
import os
import signal
import threading


class StopReason(enum.StrEnum):
    CANCELLED = "cancelled"
    SHUTDOWN = "shutdown"


class JobControl:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reason: StopReason | None = None
        self._detail = ""
        self._pgid: int | None = None

    def request_stop(self, reason: StopReason, detail: str = "") -> None:
        with self._lock:
            if self._reason is None:
                self._reason, self._detail = reason, detail
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def stop_reason(self) -> tuple[StopReason | None, str]:
        with self._lock:
            return self._reason, self._detail

    def attach(self, pgid: int) -> None:
        with self._lock:
            self._pgid = pgid

    def detach(self) -> None:
        with self._lock:
            self._pgid = None

    @property
    def pgid(self) -> int | None:
        with self._lock:
            return self._pgid

    def kill_now(self) -> None:
        """SIGKILL the job's process group from any thread (its worker is stuck or dead)."""
        pgid = self.pgid
        if pgid is not None:
            signal_group(pgid, signal.SIGKILL)


def signal_group(pgid: int, signum: int) -> bool:
    """Signal a process group; False if it is already gone."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # the pgid was recycled by someone else's process
        return False
    return True
