"""Command-line parsing the way mixlib-cli 2.2 (on Ruby 3.1's OptionParser) does it, from the option
tables in ``knife-options.json`` (each plugin's own definitions, extracted under the real
mixlib-cli; see that file's ``about``).

What real knife does, and so what this does:

* mixlib-cli defines options sorted by key (the table's ``order``); regular options go to
  OptionParser's *top* list, deprecated aliases and ``--help`` to its *base* list (``list:
  tail``). Within a list a later definition of the same flag replaces the earlier one: ``-G`` is
  ``--ssh-gateway`` for knife-ec2, not ``--groups``.
* A long option is looked up exactly (top list, then base), then completed word by word
  (``--ssh-id`` is ``--ssh-identity-file``; case-insensitive), top list before base: a deprecated
  alias is reached only when no regular option matches. Several candidates are ambiguous unless
  the shortest is a prefix of all the others.
* A short flag no list defines is completed against the long options (case-sensitive): ``-n``
  is ambiguous for knife-google (``--gce-network``, ``--node-name``, ...).
* Options and arguments may be mixed (OptionParser's ``permute!``); ``--`` ends the options.
* A deprecated option sets its replacement and prints mixlib-cli's warning on stdout.

Errors are OptionParser's exceptions with its messages; what knife does with each is the
caller's business (``knife`` prints an invalid option and the usage on stdout and exits 1; the
others abort knife with Ruby's uncaught-exception report).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TABLES = Path(__file__).with_name("knife-options.json")


class ParseError(Exception):
    """OptionParser::ParseError: ``reason: argument``."""

    reason = "parse error"
    ruby_class = "OptionParser::ParseError"

    def __init__(self, arg: str) -> None:
        super().__init__(f"{self.reason}: {arg}")
        self.arg = arg


class InvalidOption(ParseError):
    reason = "invalid option"
    ruby_class = "OptionParser::InvalidOption"


class AmbiguousOption(ParseError):
    reason = "ambiguous option"
    ruby_class = "OptionParser::AmbiguousOption"


class MissingArgument(ParseError):
    reason = "missing argument"
    ruby_class = "OptionParser::MissingArgument"


class NeedlessArgument(ParseError):
    reason = "needless argument"
    ruby_class = "OptionParser::NeedlessArgument"


@dataclass(frozen=True)
class Switch:
    """One option of a table; ``negated`` is the ``--no-x`` half of a ``--[no-]x`` option."""

    key: str
    order: int
    short: tuple[str, ...]
    long: tuple[str, ...]
    nolong: tuple[str, ...]
    arg: str  # "none", "required" or "optional"
    tail: bool
    replacement: str | None
    short_raw: str = ""
    long_raw: str = ""
    negated: bool = False

    @classmethod
    def of(cls, entry: dict[str, Any]) -> Switch:
        return cls(
            key=entry["key"],
            order=entry["order"],
            short=tuple(entry["short"]),
            long=tuple(entry["long"]),
            nolong=tuple(entry["nolong"]),
            arg=entry["arg"],
            tail=entry["list"] == "tail",
            replacement=entry.get("replacement") if entry.get("deprecated") else None,
            short_raw=entry.get("short_raw", ""),
            long_raw=entry.get("long_raw", ""),
        )

    @property
    def placed(self) -> bool:
        """``--x [ARG]``: an optional argument that may be the next word (PlacedArgument)."""
        return self.arg == "optional" and " [" in self.long_raw


@dataclass
class _List:
    """One of OptionParser's lists: short and long names to switches, the last definition wins."""

    short: dict[str, Switch] = field(default_factory=dict)
    long: dict[str, Switch] = field(default_factory=dict)

    def define(self, switch: Switch) -> None:
        for flag in switch.short:
            self.short[flag] = switch
        for name in switch.long:
            self.long[name] = switch
        if switch.nolong:
            negated = Switch(**{**switch.__dict__, "negated": True})
            for name in switch.nolong:
                self.long[name] = negated


@dataclass
class Parsed:
    values: dict[str, Any]
    """Option key → value (``True``/``False`` for flags); deprecated ones also set their
    replacement."""
    positional: list[str]
    warnings: list[str]


class OptionTable:
    def __init__(self, entries: Iterable[dict[str, Any]], banner: str = "") -> None:
        self.switches = sorted((Switch.of(e) for e in entries), key=lambda s: s.order)
        self.banner = banner
        self._top, self._base = _List(), _List()
        for switch in self.switches:
            (self._base if switch.tail else self._top).define(switch)
        self._by_key = {s.key: s for s in self.switches}

    def switch(self, key: str) -> Switch:
        return self._by_key[key]

    def usage(self) -> str:
        """``opt_parser.to_s``: the banner, then one line per option (top list, then base)."""
        lines = [self.banner]
        for switch in [s for s in self.switches if not s.tail] + [
            s for s in self.switches if s.tail
        ]:
            forms = ", ".join(f.strip() for f in (switch.short_raw, switch.long_raw) if f.strip())
            lines.append(f"    {forms}")
        return "\n".join(lines)

    # lookups, in OptionParser's order: exact in each list (top first), then completion ---------

    def long_switch(self, name: str, arg: str, *, icase: bool = True) -> Switch:
        for table in (self._top, self._base):
            if name in table.long:
                return table.long[name]
        for table in (self._top, self._base):
            found = _complete(table.long, name, icase, arg)
            if found is not None:
                return found
        raise InvalidOption(arg)

    def short_switch(self, flag: str, arg: str) -> tuple[Switch, bool]:
        """The switch of ``-flag`` and whether it was reached through a long option's name."""
        for table in (self._top, self._base):
            if flag in table.short:
                return table.short[flag], False
        return self.long_switch(flag, arg, icase=False), True

    # parsing --------------------------------------------------------------------------------

    def parse(self, argv: Sequence[str]) -> Parsed:
        values: dict[str, Any] = {}
        positional: list[str] = []
        deprecated: list[Switch] = []
        args = list(argv)
        while args:
            arg = args.pop(0)
            if arg == "--":
                positional += args
                break
            if arg.startswith("--"):
                switch, value = self._long(arg, args)
            elif arg.startswith("-") and len(arg) > 1:
                switch, value = self._short(arg, args)
            else:
                positional.append(arg)
                continue
            values[switch.key] = value
            if switch.replacement:
                deprecated.append(switch)
        warnings = []
        for switch in deprecated:
            values.setdefault(switch.replacement, values[switch.key])
            warnings.append(self._deprecation(switch))
        return Parsed(values, positional, warnings)

    def _long(self, arg: str, args: list[str]) -> tuple[Switch, Any]:
        name, equals, inline = arg[2:].partition("=")
        switch = self.long_switch(name.replace("_", "-"), arg)
        return switch, _value(switch, inline if equals else None, args, arg)

    def _short(self, arg: str, args: list[str]) -> tuple[Switch, Any]:
        flag, rest = arg[1], arg[2:]
        switch, _via_long = self.short_switch(flag, arg)
        if switch.arg == "none" and rest:
            # combined flags: -Py is -P -y
            args.insert(0, "-" + rest)
            return switch, not switch.negated
        return switch, _value(switch, rest or None, args, arg)

    def _deprecation(self, switch: Switch) -> str:
        replacement = self._by_key.get(switch.replacement or "")
        forms = "/".join(
            [f"-{s}" for s in replacement.short] + [f"--{name}" for name in replacement.long]
            if replacement
            else [str(switch.replacement)]
        )
        return f"{switch.key}: This flag is deprecated. Use {forms} instead."


def _value(switch: Switch, inline: str | None, args: list[str], arg: str) -> Any:
    if switch.arg == "none":
        if inline is not None:
            raise NeedlessArgument(arg)
        return not switch.negated
    if inline is not None:
        return inline
    if switch.arg == "required":
        if not args:
            raise MissingArgument(arg)
        return args.pop(0)
    if switch.placed and args and not re.match(r"-.", args[0]):
        return args.pop(0)
    return None


def _complete(names: dict[str, Switch], key: str, icase: bool, arg: str) -> Switch | None:
    """OptionParser::Completion: every word of ``key`` may be abbreviated (``ssh-id`` →
    ``ssh-identity-file``); the shortest candidate wins when it is a prefix of all the others."""
    pattern = re.compile(
        r"\A" + re.sub(r"\w+\b", lambda m: m.group(0) + r"\w*", re.escape(key)),
        re.IGNORECASE if icase else 0,
    )
    candidates = sorted(
        ((name, switch) for name, switch in names.items() if pattern.match(name)),
        key=lambda item: len(item[0]),
    )
    if not candidates:
        return None
    best_name, best = candidates[0]
    for name, switch in candidates[1:]:
        if switch is best:
            continue
        if best_name.startswith(name):  # cannot happen once sorted by length, kept for fidelity
            best_name, best = name, switch
        elif name.startswith(best_name):
            continue
        else:
            raise AmbiguousOption(arg)
    return best


def load(path: Path = TABLES) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def command_table(tables: dict[str, Any], cloud: str, action: str) -> OptionTable:
    entry = tables["clouds"][cloud][action]
    return OptionTable(entry["options"], f"USAGE: {entry['banner']}")
