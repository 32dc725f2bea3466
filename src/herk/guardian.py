"""A herk node's guardian: one small process that kills the node's running jobs, whole process
groups, the moment the node dies, however it dies.

The node spawns it at start (``python -m herk.guardian --groups <dir> --node-pid <pid>``) in a
session of its own, so that a signal to the node's process group does not reach it, with the read
end of a pipe as its stdin. Only the node holds the write end: ``os.pipe`` makes both ends
non-inheritable, and the runner starts jobs with ``close_fds``. So the guardian's read returns
end-of-file exactly when the node is gone (SIGKILL, the OOM killer, a crash, or a clean stop, which
leaves no record). It then takes the registry's lock, which the dead node no longer holds, runs the
registry's reap (herk.orphans, with its proof rules; it also removes the dead node's private files,
the knife configs holding cloud keys) and exits. A dying process closes its descriptors a moment
before it is dead, and its private files are removed only once it is; so unless the node said it
stops cleanly (one byte, ``DISMISSED``, written before it closes its end), the guardian first waits
for the node (``--node-pid``) to be dead.

A node that restarts at once may take the lock first: it reaps the same records itself before
it takes any work, and the guardian gives up after a while (a live node holds the lock for good).
The guardian ignores SIGTERM, SIGINT and SIGHUP: a stop sent to every process (a shutdown, a
service manager) must not take it down while its node is still draining jobs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import structlog

from herk.orphans import (
    LOCK_PATIENCE,
    GroupRegistry,
    Record,
    RegistryBusy,
    process_alive,
    start_time,
)
from megam import log

if TYPE_CHECKING:  # the guardian process itself runs no loop: it starts lighter without asyncio
    import asyncio

logger = log.get("herk.guardian")

DISMISS_SECONDS: Final = 10.0
"""How long a stopping node waits for its guardian's (normally empty) reap."""
IGNORED_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
DEATH_POLL_SECONDS: Final = 0.005
DISMISSED: Final = b"d"
"""The one byte a node writes, on a clean stop, just before it closes its end."""


class Guardian:
    """The node's side: the pipe's write end, and the guardian process."""

    def __init__(self, process: subprocess.Popen[bytes], pipe: int) -> None:
        self.process = process
        self._pipe: int | None = pipe
        self._watching: tuple[asyncio.AbstractEventLoop, int] | None = None

    @classmethod
    def spawn(cls, groups: Path, log_level: str) -> Guardian:
        read_end, write_end = os.pipe()  # non-inheritable: no job can hold the write end
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "herk.guardian",
                    "--groups",
                    str(groups),
                    "--node-pid",
                    str(os.getpid()),
                    "--log-level",
                    log_level,
                ],
                stdin=read_end,
                start_new_session=True,
                close_fds=True,
            )
        except OSError:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        return cls(process, write_end)

    def watch(self, loop: asyncio.AbstractEventLoop, on_exit: Callable[[int], None]) -> None:
        """``on_exit(returncode)`` if the guardian ends while the node runs (killed, crashed)."""
        try:
            pidfd = os.pidfd_open(self.process.pid)
        except OSError:  # no pidfd (Linux < 5.3): a lost guardian goes unnoticed
            return
        self._watching = (loop, pidfd)

        def exited() -> None:
            self.unwatch()
            on_exit(self.process.wait())

        loop.add_reader(pidfd, exited)

    def unwatch(self) -> None:
        """On the loop's thread."""
        if self._watching is not None:
            loop, pidfd = self._watching
            self._watching = None
            loop.remove_reader(pidfd)
            os.close(pidfd)

    def dismiss(self) -> None:
        """Let the guardian go, once the node released the registry (a clean stop). Blocks until
        it has reaped, so that another node of this name may open the registry at once."""
        if self._pipe is not None:
            with contextlib.suppress(OSError):
                os.write(self._pipe, DISMISSED)  # alive: the guardian need not wait for its end
            os.close(self._pipe)
            self._pipe = None
        try:
            self.process.wait(DISMISS_SECONDS)
        except subprocess.TimeoutExpired:
            logger.warning("herk.guardian_slow", pid=self.process.pid, seconds=DISMISS_SECONDS)


def guard(
    pipe: int, groups: Path, patience: float = LOCK_PATIENCE, node: int | None = None
) -> list[Record]:
    """Wait for end-of-file on ``pipe``, then reap the registry in ``groups``."""
    node_started = start_time(node) if node is not None else None
    dismissed = False
    while data := os.read(pipe, 4096):
        dismissed = dismissed or DISMISSED in data  # nothing else is ever written
    if node is not None and not dismissed:
        _wait_until_dead(node, node_started, patience)
    if not groups.is_dir():  # the data dir was removed: nothing to reap, nothing to re-create
        return []
    with structlog.contextvars.bound_contextvars(reaper="guardian"):
        registry = _take(groups, patience)
        if registry is None:
            return []
        try:
            return registry.reap()
        finally:
            registry.close()


def _wait_until_dead(pid: int, started: int | None, patience: float) -> None:
    """A dying process closes its descriptors (our end-of-file) a moment before it is dead;
    until then its private files look in use to the reap (herk.orphans.process_alive)."""
    deadline = time.monotonic() + patience
    while process_alive(pid, started) and time.monotonic() < deadline:
        time.sleep(DEATH_POLL_SECONDS)


def _take(groups: Path, patience: float) -> GroupRegistry | None:
    """The registry, once the dead node's lock is released (it goes with the node's last
    descriptor, maybe a moment after the pipe's); None if a node of this name started again:
    it holds the lock for good, and reaps the records itself before it takes any work."""
    try:
        return GroupRegistry.open(groups)
    except RegistryBusy:
        logger.info("guardian.lock_held", groups=str(groups))
    try:
        return GroupRegistry.open(groups, patience=patience)
    except RegistryBusy:
        logger.info("guardian.registry_taken", groups=str(groups))
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m herk.guardian", description=__doc__)
    parser.add_argument("--groups", type=Path, required=True)
    parser.add_argument("--node-pid", type=int, help="the node: its private files are reaped")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    for signum in IGNORED_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    log.configure(args.log_level)
    guard(sys.stdin.fileno(), args.groups, node=args.node_pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
