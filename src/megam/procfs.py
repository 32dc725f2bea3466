"""Reading ``/proc/<pid>/stat``, the one parse shared by whoever looks at processes."""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")


def stat_fields(pid: int, proc: Path = PROC) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` from field 3 (the state) on, so index ``n`` is field
    ``n + 3``; None if there is no such process. Field 2, the command name, is skipped: it is in
    parentheses and may hold spaces and parentheses itself."""
    try:
        raw = (proc / str(pid) / "stat").read_text(errors="replace")
    except OSError:
        return None
    return raw.rsplit(")", 1)[1].split()
