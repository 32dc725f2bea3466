"""Writing a service's output without ever blocking its event loop or raising on a closed stream.

A service's stdout and stderr may be a pipe whose reader died (``megam up | head -1``) or stopped
reading (a stalled ``tee``). A plain write then raises ``BrokenPipeError`` or blocks, and it does so
wherever the service happens to log: in a signal handler, which then never stops the service. Here
lines are queued and a thread writes them to the file descriptor; a full queue drops lines (and
counts them), a closed stream discards them, and the caller never waits.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import threading
from typing import Final

CAPACITY: Final = 10_000
"""Lines held for a slow reader before new ones are dropped."""


class DetachedWriter:
    """Bytes for one file descriptor, written by a thread of its own."""

    def __init__(self, fd: int, *, capacity: int = CAPACITY) -> None:
        self.fd = fd
        self.dropped = 0
        self.closed = False
        self._lines: queue.Queue[bytes | None] = queue.Queue(capacity)
        self._thread = threading.Thread(target=self._pump, name=f"output-fd{fd}", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> int:
        if data and not self.closed:
            try:
                self._lines.put_nowait(data)
            except queue.Full:
                self.dropped += 1
        return len(data)

    def flush(self) -> None:
        """Nothing to do: the thread writes as soon as it can."""

    def drain(self, timeout: float) -> None:
        """Let queued lines out for at most ``timeout`` seconds (used when the process ends)."""
        with contextlib.suppress(queue.Full):
            self._lines.put(None, timeout=timeout)
        self._thread.join(timeout)

    def _pump(self) -> None:
        while (data := self._lines.get()) is not None:
            if self.closed:
                continue
            try:
                _write_all(self.fd, data)
            except OSError:
                self._discard()

    def _discard(self) -> None:
        """The reader is gone: everything later is thrown away, and the descriptor is pointed
        at /dev/null so that the interpreter's own final flush cannot fail either."""
        self.closed = True
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.fd)
            os.close(devnull)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class DetachedText(io.TextIOBase):
    """A text stream over a :class:`DetachedWriter`, to stand in for ``sys.stdout``/``sys.stderr``.

    Text is handed on per write: ``print`` calls write for the text and then for the newline,
    and each piece reaches the descriptor in order.
    """

    def __init__(self, writer: DetachedWriter, *, tty: bool, encoding: str = "utf-8") -> None:
        super().__init__()
        self.writer = writer
        self._tty = tty
        self._encoding = encoding

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding

    @property
    def buffer(self) -> DetachedWriter:
        return self.writer

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._tty

    def fileno(self) -> int:
        return self.writer.fd

    def write(self, text: str) -> int:
        self.writer.write(text.encode(self._encoding, errors="replace"))
        return len(text)

    def flush(self) -> None:
        """Nothing to wait for (see :meth:`DetachedWriter.flush`)."""


def detach(stream: io.TextIOBase | object) -> DetachedText | None:
    """A detached stand-in for ``stream``, or None when it has no file descriptor."""
    try:
        fd = stream.fileno()  # type: ignore[union-attr]
        tty = stream.isatty()  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError):
        return None
    with contextlib.suppress(AttributeError, OSError, ValueError):
        stream.flush()  # type: ignore[union-attr]
    return DetachedText(DetachedWriter(fd), tty=tty)
