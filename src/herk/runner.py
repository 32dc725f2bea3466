"""Run one job's subprocess in a worker thread: stream its lines, enforce its timeout, obey cancel.

The job runs in its own session (so its own process group): a timeout or cancel sends SIGTERM to
the whole group, then SIGKILL after the grace period, so grandchildren (knife's ssh, chef-client's
package managers) die with it instead of holding the pipes open. When the main process exits, the
rest of its group is killed before the main process is reaped, while its pid cannot be recycled:
a job that wants to leave a process running must start it in a session of its own.

If herk itself dies (SIGKILL, the OOM killer) none of that runs: the node's guardian kills the
group instead, the moment herk is gone (herk.guardian, herk.orphans, fed through ``on_started``).
That costs nothing per job: the main process is started as it is, not behind a wrapper such as
``setpriv --pdeathsig`` (an exec per job, and it reached only the main process), nor with a
``preexec_fn`` (Python between fork and exec in a threaded process, documented unsafe; and CPython
then forks instead of using vfork). ``close_fds`` keeps herk's descriptors, the guardian's pipe
among them, out of the job (docs/herk.md, "A herk node killed outright").
"""

from __future__ import annotations

import dataclasses
import enum
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final, Protocol

from herk.control import JobControl, StopReason, signal_group

MAX_LINE_BYTES: Final = 16 * 1024
"""A longer line is cut into pieces of this size rather than held in memory."""
POLL_SECONDS: Final = 0.1
PIPE_LINGER_SECONDS: Final = 1.0
"""How long to keep reading after the group is dead, for a descendant that left the group."""


class Ending(enum.StrEnum):
    EXITED = "exited"
    TIMED_OUT = "timed_out"
    STOPPED = "stopped"
    NOT_STARTED = "not_started"


@dataclasses.dataclass(frozen=True, slots=True)
class ProcessResult:
    ending: Ending
    exit_code: int | None
    last_stderr: str
    duration: float
    stop_reason: StopReason | None = None
    detail: str = ""


class LineSink(Protocol):
    def line(self, stream: str, text: str) -> None: ...

    def tick(self) -> None:
        """Called at least every ``seconds_until_flush()``: flush a batch that is due."""

    def seconds_until_flush(self) -> float: ...


def run_process(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: Path | None,
    timeout: float,
    kill_grace: float,
    control: JobControl,
    sink: LineSink,
    on_started: Callable[[int], None] = lambda pgid: None,
    clock: Callable[[], float] = time.monotonic,
) -> ProcessResult:
    """``on_started(pgid)`` is called once the job's process group exists, before it is watched."""
    started = clock()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        return ProcessResult(
            Ending.NOT_STARTED, None, "", 0.0, detail=f"cannot start {argv[0]!r}: {exc}"
        )
    control.attach(proc.pid)
    try:
        on_started(proc.pid)
        watch = _Watch(proc, control, sink, started + timeout, kill_grace, clock)
        return watch.run(started)
    finally:
        # Whatever happened above (even a bug), the job's processes do not outlive it. Only
        # before the leader is reaped: afterwards its pid, the group id, may belong to another.
        if proc.returncode is None:
            signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        control.detach()


class _Watch:
    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        control: JobControl,
        sink: LineSink,
        deadline: float,
        kill_grace: float,
        clock: Callable[[], float],
    ) -> None:
        self.proc = proc
        self.control = control
        self.sink = sink
        self.deadline = deadline
        self.kill_grace = kill_grace
        self.clock = clock
        self.selector = selectors.DefaultSelector()
        self.pipes: dict[int, IO[bytes]] = {}
        self.splitters: dict[int, _LineSplitter] = {}
        self.ending = Ending.EXITED
        self.stop_reason: StopReason | None = None
        self.kill_at: float | None = None
        self.exited_at: float | None = None
        self.last_stderr = ""
        for stream, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            assert pipe is not None
            fd = pipe.fileno()
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ)
            self.pipes[fd] = pipe
            self.splitters[fd] = _LineSplitter(stream, self._emit)
        # A pidfd turns readable when the process exits: the loop wakes at once instead of
        # polling for the exit (a /bin/true would otherwise wait out a whole poll).
        self.pidfd = _pidfd(proc.pid)
        if self.pidfd is not None:
            self.selector.register(self.pidfd, selectors.EVENT_READ)

    def run(self, started: float) -> ProcessResult:
        try:
            while self.selector.get_map() or self.exited_at is None:
                self._read(self._wait_seconds())
                self.sink.tick()
                self._enforce_limits()
                self._notice_exit()
                if self._pipes_abandoned():
                    break
        finally:
            self._forget_pidfd()
            for fd in list(self.selector.get_map()):
                self._close(fd)
            self.selector.close()
        self.control.detach()  # before reaping: the master must not signal a recycled pid
        code = self.proc.wait()
        return ProcessResult(
            self.ending,
            code,
            self.last_stderr,
            self.clock() - started,
            self.stop_reason,
        )

    def _wait_seconds(self) -> float:
        limits = [POLL_SECONDS, self.sink.seconds_until_flush()]
        if self.kill_at is None:
            limits.append(self.deadline - self.clock())
        else:
            limits.append(self.kill_at - self.clock())
        return max(0.0, min(limits))

    def _read(self, wait: float) -> None:
        if not self.selector.get_map():
            time.sleep(min(wait, 0.05))
            return
        for key, _ in self.selector.select(wait):
            if key.fd == self.pidfd:
                self._forget_pidfd()  # it exited: _notice_exit reaps it next
                continue
            try:
                data = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            if data:
                self.splitters[key.fd].feed(data)
            else:
                self.splitters[key.fd].finish()
                self._close(key.fd)

    def _close(self, fd: int) -> None:
        self.selector.unregister(fd)
        self.pipes.pop(fd).close()

    def _forget_pidfd(self) -> None:
        if self.pidfd is not None:
            self.selector.unregister(self.pidfd)
            os.close(self.pidfd)
            self.pidfd = None

    def _emit(self, stream: str, text: str) -> None:
        if stream == "stderr" and text.strip():
            self.last_stderr = text
        self.sink.line(stream, text)

    def _enforce_limits(self) -> None:
        now = self.clock()
        if self.kill_at is None:
            if self.control.stop_requested:
                self.stop_reason = self.control.stop_reason[0]
                self._terminate(Ending.STOPPED, now)
            elif now >= self.deadline:
                self._terminate(Ending.TIMED_OUT, now)
        elif now >= self.kill_at:
            signal_group(self.proc.pid, signal.SIGKILL)

    def _terminate(self, ending: Ending, now: float) -> None:
        self.ending = ending
        self.kill_at = now + self.kill_grace
        signal_group(self.proc.pid, signal.SIGTERM)

    def _notice_exit(self) -> None:
        if self.exited_at is not None:
            return
        # WNOWAIT leaves the leader a zombie, so its pid (the group id) cannot be reused while
        # the leftovers of its group are killed.
        info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is not None and info.si_pid == self.proc.pid:
            self.exited_at = self.clock()
            signal_group(self.proc.pid, signal.SIGKILL)

    def _pipes_abandoned(self) -> bool:
        """A descendant outside the group still holds a pipe: stop reading after a while."""
        return (
            self.exited_at is not None
            and bool(self.selector.get_map())
            and self.clock() - self.exited_at > PIPE_LINGER_SECONDS
        )


def _pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (Linux 5.3+), or None where there is none: the loop then polls."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


class _LineSplitter:
    def __init__(self, stream: str, emit: Callable[[str, str], None]) -> None:
        self.stream = stream
        self.emit = emit
        self.buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\n")
            if end < 0:
                break
            self._send(bytes(self.buffer[:end]))
            del self.buffer[: end + 1]
        while len(self.buffer) >= MAX_LINE_BYTES:
            self._send(bytes(self.buffer[:MAX_LINE_BYTES]))
            del self.buffer[:MAX_LINE_BYTES]

    def finish(self) -> None:
        if self.buffer:
            self._send(bytes(self.buffer))
            self.buffer.clear()

    def _send(self, raw: bytes) -> None:
        for start in range(0, max(len(raw), 1), MAX_LINE_BYTES):
            piece = raw[start : start + MAX_LINE_BYTES]
            self.emit(self.stream, piece.decode("utf-8", errors="replace").rstrip("\r"))
