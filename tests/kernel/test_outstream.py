"""A service's output never blocks it and never raises, whatever its reader does."""

from __future__ import annotations

import os

from megam.outstream import DetachedText, DetachedWriter, detach


def test_lines_reach_the_descriptor_in_order() -> None:
    reader, writer_fd = os.pipe()
    writer = DetachedWriter(writer_fd)
    for n in range(100):
        writer.write(f"line {n}\n".encode())
    writer.drain(10)
    os.close(writer_fd)
    with os.fdopen(reader, "rb") as pipe:
        assert pipe.read().decode().splitlines() == [f"line {n}" for n in range(100)]


def test_a_stalled_reader_costs_lines_not_time() -> None:
    """Nobody reads the pipe: once it and the queue are full, writes return and are counted."""
    reader, writer_fd = os.pipe()
    writer = DetachedWriter(writer_fd, capacity=10)
    line = b"x" * 1000 + b"\n"
    for _ in range(1000):  # 1 MB: far more than a pipe holds
        assert writer.write(line) == len(line)
    assert writer.dropped > 0
    os.close(reader)
    writer.drain(10)


def test_a_closed_reader_is_ignored_and_the_descriptor_stays_writable() -> None:
    reader, writer_fd = os.pipe()
    os.close(reader)
    writer = DetachedWriter(writer_fd)
    writer.write(b"nobody reads this\n")
    writer.drain(10)
    assert writer.closed
    writer.write(b"nor this\n")  # no BrokenPipeError, now or later
    os.write(writer_fd, b"the interpreter's final flush cannot fail either\n")
    os.close(writer_fd)


def test_a_text_stand_in_behaves_like_a_stream_for_print() -> None:
    reader, writer_fd = os.pipe()
    text = DetachedText(DetachedWriter(writer_fd), tty=False)
    print("héllo", "world", file=text, flush=True)
    text.writer.drain(10)
    os.close(writer_fd)
    with os.fdopen(reader, "rb") as pipe:
        assert pipe.read().decode() == "héllo world\n"
    assert not text.isatty() and text.fileno() == writer_fd


def test_a_stream_without_a_descriptor_is_left_alone() -> None:
    class NoFd:
        def fileno(self) -> int:
            raise OSError("no descriptor")

    assert detach(NoFd()) is None
