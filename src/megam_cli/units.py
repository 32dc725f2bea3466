"""What each node metric measures, so that the CLI prints ``1.2 GiB`` and not ``1.28849e+09``.

Names and units are those of :mod:`megam.sampling`. ``of`` says whose figure it is: the node's
own process, the node's nginx, or the whole host the node runs on (for a local node, the herk
machine: not the node's own).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Unit:
    suffix: str
    of: str
    binary: bool = False
    """A byte count, printed with KiB/MiB/GiB."""


UNITS: dict[str, Unit] = {
    "proc_cpu_percent": Unit("%", "node process"),
    "proc_rss_bytes": Unit("", "node process", binary=True),
    "http_requests_per_min": Unit(" requests/min", "node nginx"),
    "nginx_requests": Unit(" requests (total)", "node nginx"),
    "nginx_active_connections": Unit(" connections", "node nginx"),
    "load_one": Unit(" (1-minute load)", "host"),
    "cpu_user": Unit("%", "host"),
    "cpu_system": Unit("%", "host"),
    "cpu_idle": Unit("%", "host"),
    "mem_total": Unit("", "host", binary=True),
    "mem_free": Unit("", "host", binary=True),
    "mem_cached": Unit("", "host", binary=True),
    "bytes_in": Unit("/s", "host", binary=True),
    "bytes_out": Unit("/s", "host", binary=True),
    "pkts_in": Unit(" packets/s", "host"),
    "pkts_out": Unit(" packets/s", "host"),
}

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB")


def scope(name: str) -> str:
    unit = UNITS.get(name)
    return unit.of if unit else ""


def with_unit(name: str, value: float) -> str:
    """``value`` of metric ``name`` as a person reads it."""
    unit = UNITS.get(name)
    if unit is None:
        return _number(value)
    if unit.binary:
        return _bytes(value) + unit.suffix
    return _number(value) + unit.suffix


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _bytes(value: float) -> str:
    size, step = float(value), 0
    while abs(size) >= 1024 and step < len(_BINARY) - 1:
        size, step = size / 1024, step + 1
    return f"{size:.0f} B" if step == 0 else f"{size:.1f} {_BINARY[step]}"
