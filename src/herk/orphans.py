"""The process groups of running jobs, recorded on disk so that the jobs of a herk node killed
outright are reaped: at once by the node's guardian (herk.guardian), and again when it starts.

A job's main process and its descendants (knife's ssh, chef-client's ruby) share the job's
process group. So while a job runs its group has a record, ``<directory>/<pgid>`` holding the
leader's start time (field 22 of ``/proc/<pid>/stat``) and the job id; the record goes when the
job ends. :meth:`GroupRegistry.reap` kills (SIGKILL) each recorded group that is provably still
the job's and drops every record: the guardian runs it the moment its node dies, and a node that
starts runs it before it takes any work, for a guardian that died with it.

Pids are reused, so a record is trusted only with proof that the group is still the job's:

* its leader (pid = pgid) runs with the recorded start time; a process with that pid and another
  start time means the pid was reused, and nothing is killed;
* or, the leader gone, a process of the group has the job's ``MEGAM_JOB_ID`` in its
  environment. A group id cannot be reused while any process is in the group, so that process
  is a leftover of the job, and so is its whole group.

A record that fails both (its group is gone, or a torn write) is dropped without killing
anything. Only the holder of the directory's lock may reap or record: the live node, or once it
died, its guardian; a second node started with the same name and data dir is refused.

Jobs' private files (the knife config with the cloud's keys) live in
``<data dir>/herk/.private/<pid>-<start time>/``, a 0700 directory owned by the herk process of
that pid and start time. A job removes its own files when it ends; :meth:`GroupRegistry.reap`
also removes every such directory whose owner is no longer alive (gone, a zombie, or its pid
reused), so the keys of a herk killed mid-job are gone as soon as its guardian reaps, or at the
latest when a herk node starts on that data dir again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Final

from herk.control import signal_group
from megam import log
from megam.procfs import PROC, stat_fields

logger = log.get("herk.orphans")

JOB_ID_VARIABLE: Final = "MEGAM_JOB_ID"
"""Set in every job's environment by herk.environment; descendants inherit it."""
LOCK_NAME: Final = ".lock"
LOCK_PATIENCE: Final = 5.0
"""How long a dying node's lock or a guardian's reap may keep the lock: milliseconds, normally.
A live node holds it for good."""
LOCK_RETRY_SECONDS: Final = 0.01


PRIVATE_NAME: Final = ".private"
"""Beside the nodes' directories; only ``<pid>-<start time>`` entries in it are ever removed."""


def groups_directory(data_dir: Path, herk: str) -> Path:
    return data_dir / "herk" / herk / "groups"


def private_root(data_dir: Path) -> Path:
    return data_dir / "herk" / PRIVATE_NAME


def private_directory(data_dir: Path) -> Path:
    """This process's directory for its jobs' private files (0700, created on first use)."""
    pid = os.getpid()
    directory = private_root(data_dir) / f"{pid}-{start_time(pid)}"
    private_root(data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


def remove_abandoned_private(root: Path) -> list[Path]:
    """Remove the private directories under ``root`` whose owning process is not alive."""
    removed = []
    for path in sorted(root.iterdir()) if root.is_dir() else ():
        if not _owner_alive(path.name):
            shutil.rmtree(path, ignore_errors=True)
            logger.warning("orphans.private_removed", directory=str(path))
            removed.append(path)
    return removed


def _owner_alive(name: str) -> bool:
    pid, _, started = name.partition("-")
    if not (pid.isdigit() and started.isdigit()):
        return True  # not a private directory: never removed
    return process_alive(int(pid), int(started))


def process_alive(pid: int, started: int | None) -> bool:
    """The process of this pid and start time runs (a zombie does not: it is only a record)."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in "ZX" and int(fields[19]) == started


class RegistryBusy(RuntimeError):
    """Another live herk node of the same name uses this data dir."""


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    pgid: int
    start_time: int
    job_id: str


class GroupRegistry:
    """A node's records; open it with :meth:`open`, which takes the directory's lock."""

    def __init__(self, directory: Path, lock: IO[bytes]) -> None:
        self.directory = directory
        self._lock = lock

    @classmethod
    def open(cls, directory: Path, *, patience: float = 0.0) -> GroupRegistry:
        """Wait up to ``patience`` seconds for the lock, then raise :class:`RegistryBusy`."""
        directory.mkdir(parents=True, exist_ok=True)
        lock = open(directory / LOCK_NAME, "ab")  # noqa: SIM115 - held until close()
        deadline = time.monotonic() + patience
        while not _locked(lock):
            if time.monotonic() >= deadline:
                lock.close()
                raise RegistryBusy(
                    f"{directory} is locked: a herk node of the same name runs with this data dir"
                )
            time.sleep(LOCK_RETRY_SECONDS)
        return cls(directory, lock)

    def close(self) -> None:
        self._lock.close()

    def record(self, pgid: int, job_id: str) -> None:
        """Called while the leader is not yet reaped, so its pid is still its own."""
        started = start_time(pgid)
        if started is None:
            return
        try:
            (self.directory / str(pgid)).write_text(f"{started} {job_id}\n")
        except OSError as exc:  # the job runs unrecorded: a killed herk leaves it running
            logger.warning("orphans.record_failed", pgid=pgid, error=str(exc))

    def forget(self, pgid: int) -> None:
        try:
            (self.directory / str(pgid)).unlink(missing_ok=True)
        except OSError as exc:  # harmless: the start time check refuses a reused pid
            logger.warning("orphans.forget_failed", pgid=pgid, error=str(exc))

    @contextlib.contextmanager
    def recording(self, job_id: str) -> Iterator[Callable[[int], None]]:
        """``record(pgid)`` for the runner to call once the job's leader runs; the record is
        removed on exit, which comes after the runner killed the group and reaped the leader."""
        recorded: list[int] = []

        def record(pgid: int) -> None:
            recorded.append(pgid)
            self.record(pgid, job_id)

        try:
            yield record
        finally:
            for pgid in recorded:
                self.forget(pgid)

    def reap(self) -> list[Record]:
        """Kill every recorded group that is provably a job's leftover; drop all records; remove
        the private files of dead herk processes."""
        reaped = self._reap_groups()
        # data_dir/herk/<name>/groups -> data_dir/herk/.private
        remove_abandoned_private(self.directory.parent.parent / PRIVATE_NAME)
        return reaped

    def _reap_groups(self) -> list[Record]:
        reaped: list[Record] = []
        for path in sorted(self.directory.iterdir()):
            if not path.name.isdigit():
                continue
            record = _parse(path)
            proof = _proof(record) if record is not None else None
            if record is not None and proof is not None:
                signal_group(record.pgid, signal.SIGKILL)
                logger.warning(
                    "orphans.reaped", job_id=record.job_id, pgid=record.pgid, proof=proof
                )
                reaped.append(record)
            else:
                logger.info("orphans.dropped", record=path.name)
            path.unlink(missing_ok=True)
        return reaped


def _locked(lock: IO[bytes]) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if there is no such pid."""
    fields = stat_fields(pid)
    return int(fields[19]) if fields is not None else None


def _parse(path: Path) -> Record | None:
    try:
        started, job_id = path.read_text().split()
        return Record(int(path.name), int(started), job_id)
    except (OSError, ValueError):
        return None


def _proof(record: Record) -> str | None:
    leader_started = start_time(record.pgid)
    if leader_started is not None:
        return "leader" if leader_started == record.start_time else None
    marker = f"{JOB_ID_VARIABLE}={record.job_id}".encode()
    for pid in _members(record.pgid):
        if marker in _environment(pid):
            return f"process {pid} of the job"
    return None


def _members(pgid: int) -> Iterator[int]:
    for name in os.listdir(PROC):
        fields = stat_fields(int(name)) if name.isdigit() else None
        if fields is not None and int(fields[2]) == pgid:  # field 5: the process group
            yield int(name)


def _environment(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            return environ.read().split(b"\0")
    except OSError:  # gone, or not ours to read (another user's): no proof
        return []
