"""How a command prints: tables and sentences for a person, or its data as JSON (``--json``)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

import orjson


@dataclasses.dataclass(frozen=True, slots=True)
class Output:
    json: bool = False

    def say(self, text: str, *, stream: TextIO | None = None) -> None:
        """A sentence for a person; with ``--json`` only the data is printed."""
        if not self.json:
            print(text, file=stream or sys.stdout, flush=True)

    def data(self, value: Any) -> None:
        """The command's result, when it is printed as JSON."""
        if self.json:
            sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")
            sys.stdout.flush()

    def line(self, value: Any) -> None:
        """One JSON object per line, for streams (``--follow``)."""
        sys.stdout.write(orjson.dumps(value).decode() + "\n")
        sys.stdout.flush()

    def table(
        self, rows: Iterable[Mapping[str, Any]], columns: list[str], *, data: Any = None
    ) -> None:
        """``rows`` as a table for a person, or ``data`` (default: the rows) as JSON."""
        rows = list(rows)
        if self.json:
            self.data(rows if data is None else data)
            return
        print_table(rows, columns)

    def fields(self, record: Mapping[str, Any], keys: Iterable[str], *, data: Any = None) -> None:
        """``key value`` lines for a person (empty values left out), or the record as JSON."""
        if self.json:
            self.data(record if data is None else data)
            return
        for key in keys:
            if record.get(key) not in (None, ""):
                print(f"{key:12} {record[key]}")


HUMAN = Output()


def print_table(
    rows: Iterable[Mapping[str, Any]], columns: list[str], out: TextIO | None = None
) -> None:
    out = out or sys.stdout
    rows = list(rows)
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns}
    out.write("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip() + "\n")
    for row in rows:
        out.write("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns).rstrip() + "\n")
