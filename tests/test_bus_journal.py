"""The embedded bus's journal: one process per data dir, a clear refusal of a bad file, and
writes that fail without stopping the writer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from megam.bus import BusError, connect_bus, journal
from megam.bus.embedded import EmbeddedBus
from megam.bus.journal import Journal


async def test_megam_up_keeps_its_bus_in_the_data_dir(tmp_path: Path) -> None:
    bus = connect_bus(None, tmp_path)
    await bus.connect()
    try:
        assert isinstance(bus, EmbeddedBus) and bus.durable
        assert (tmp_path / "bus" / "bus.db").exists()
    finally:
        await bus.close()


async def test_a_file_that_is_not_a_journal_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "bus.db").write_bytes(b"these bytes are not SQLite " * 100)
    bus = EmbeddedBus(tmp_path)
    with pytest.raises(BusError, match=r"cannot open the embedded bus journal .*bus\.db") as err:
        await bus.connect()
    assert "\n" not in str(err.value)
    (tmp_path / "bus.db").unlink()
    await bus.connect()  # the lock went with the failed attempt
    await bus.close()


LOCKER = """
import asyncio, sys
from megam.bus.embedded import EmbeddedBus

async def main():
    bus = EmbeddedBus(sys.argv[1])
    await bus.connect()
    print("open", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_another_process_on_the_same_data_dir_is_told_who_holds_it(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(tmp_path)], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"open\n"
        with pytest.raises(BusError, match=f"in use by another process \\(pid {holder.pid}\\)"):
            await EmbeddedBus(tmp_path).connect()
        holder.kill()  # SIGKILL: the kernel releases its lock
        holder.wait()
        bus = EmbeddedBus(tmp_path)
        await bus.connect()
        await bus.close()
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, 9)
            holder.wait()


async def test_a_failed_write_is_an_error_for_its_callers_and_the_writer_lives_on(
    tmp_path: Path,
) -> None:
    kept = Journal(tmp_path)
    kept.open()
    try:
        with pytest.raises(BusError, match="could not write"):
            await kept.commit([("INSERT INTO no_such_table VALUES (?)", (1,))])
        seen: list[str] = []
        await kept.commit([journal.put_exchange("after", "topic")], lambda: seen.append("after"))
        assert seen == ["after"]
    finally:
        await kept.close()
    reopened = Journal(tmp_path)
    try:
        assert reopened.open().exchanges == [("after", "topic")]
    finally:
        await reopened.close()


async def test_plain_writes_are_on_disk_once_closed(tmp_path: Path) -> None:
    kept = Journal(tmp_path)
    kept.open()
    kept.write_later([journal.put_claim("key", "holder", 60.0, 1.0)])
    await kept.close()
    reopened = Journal(tmp_path)
    try:
        assert reopened.open().claims == [("key", "holder", 60.0, 1.0)]
    finally:
        await reopened.close()
