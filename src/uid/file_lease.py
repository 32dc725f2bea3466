"""Worker-id leases on one host without a broker: ``fcntl.flock`` on ``<dir>/worker-<n>.lock``.

The kernel drops a flock when its holder's last descriptor closes, so a crashed (even SIGKILLed)
holder frees its id at once. The lock file also stores the holder's horizon as a fixed-width
decimal written in one ``pwrite``, so a crash cannot leave half a number. Lock files are never
deleted: removing one while another process has it open would let two processes lock two
different files of the same name.

The lock is per worker id, whatever the datacenter: on one host that only errs on the safe side.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from megam import log
from uid.lease import UNKNOWN_HORIZON, Lease, Leaser, candidates, unavailable

logger = log.get("uid.lease.file")

_WIDTH = 20


class FileLease(Lease):
    def __init__(
        self, path: Path, fd: int, datacenter_id: int, worker_id: int, previous: int
    ) -> None:
        super().__init__(datacenter_id, worker_id, previous)
        self.path = path
        self._fd: int | None = fd

    @property
    def where(self) -> str:
        return f"file {self.path}"

    async def persist_horizon(self, until_ms: int) -> None:
        self._write(until_ms)

    async def release(self, last_issued_ms: int) -> None:
        if self._fd is None:
            return
        try:
            self._write(last_issued_ms)
        finally:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor drops the flock
        logger.info("uid.lease.released", where=self.where, last_issued_ms=last_issued_ms)

    def _write(self, value: int) -> None:
        if self._fd is None:
            raise RuntimeError(f"the lease on {self.path} was released")
        os.pwrite(self._fd, f"{value:>{_WIDTH}}\n".encode(), 0)


class FileLeaser(Leaser):
    kind = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def acquire(
        self, datacenter_id: int, worker_id: int | None, *, prefer: int | None = None
    ) -> FileLease:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for candidate in candidates(worker_id, prefer):
            lease = self._try(datacenter_id, candidate)
            if lease is not None:
                logger.info(
                    "uid.lease.acquired",
                    where=lease.where,
                    worker_id=candidate,
                    previous_horizon_ms=lease.previous_horizon_ms,
                )
                return lease
        raise unavailable(self.kind, datacenter_id, worker_id)

    def _try(self, datacenter_id: int, worker_id: int) -> FileLease | None:
        path = self.directory / f"worker-{worker_id}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by children (PEP 446)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return FileLease(path, fd, datacenter_id, worker_id, _read_horizon(fd, path))


def _read_horizon(fd: int, path: Path) -> int:
    raw = os.pread(fd, _WIDTH + 1, 0)
    if not raw.strip():
        return -1
    try:
        return int(raw)
    except ValueError:
        logger.warning(
            "uid.lease.unreadable_horizon",
            path=str(path),
            content=raw[:40].decode(errors="replace"),
        )
        return UNKNOWN_HORIZON
