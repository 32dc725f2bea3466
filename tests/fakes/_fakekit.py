"""What the fake ``knife`` and ``chef-client`` share: option parsing the way Ruby's OptionParser
(mixlib-cli) does it, the argv record, and the environment knobs tests use to steer them.

Knobs (environment variables; herk passes them through with ``MEGAM_HERK_PASSENV=MEGAM_FAKE_*``):

* ``MEGAM_FAKE_ARGV_LOG``   file to append one JSON record per run (argv, config file and its mode,
  the environment's variable names)
* ``MEGAM_FAKE_FAIL``       make the run fail the way the real tool does (knife: a Fog error code
  such as ``InstanceLimitExceeded``; chef-client: any value)
* ``MEGAM_FAKE_HANG``       ``1``: hang mid-run, with a grandchild ``sleep`` in the same group
* ``MEGAM_FAKE_PIDS``       file to write the hanging process's pid and its grandchild's pid to
* ``MEGAM_FAKE_IGNORE_TERM`` ``1``: ignore SIGTERM while hanging (so only SIGKILL stops it)
* ``MEGAM_FAKE_LINES``      print this many extra progress lines
* ``MEGAM_FAKE_LINE_SECONDS`` wait this long before each extra line (a slow cloud)
* ``MEGAM_FAKE_DEBUG``      ``1``: knife prints the config it loaded, as ``knife -VV`` does;
  ``2``: it also prints the config and credentials files line by line, as they are on disk
* ``MEGAM_FAKE_LIST_CWD``   ``1``: the argv record also lists the files under the working directory
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Option:
    short: str | None
    long: str
    takes_value: bool


class InvalidOption(Exception):
    pass


class MissingArgument(Exception):
    pass


def parse(
    argv: Sequence[str], options: Sequence[Option]
) -> tuple[dict[str, str | bool], list[str]]:
    """Options and positional arguments; raises like OptionParser on an unknown or bare flag."""
    by_flag = {}
    for option in options:
        by_flag[option.long] = option
        if option.short:
            by_flag[option.short] = option
    values: dict[str, str | bool] = {}
    positional: list[str] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--":
            positional += args
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        if arg.startswith("--"):
            flag, equals, value = arg.partition("=")
            inline = value if equals else None
        else:
            flag, inline = arg[:2], (arg[2:] or None)
        option = by_flag.get(flag)
        if option is None:
            raise InvalidOption(f"invalid option: {arg}")
        if option.takes_value:
            if inline is None:
                if not args:
                    raise MissingArgument(f"missing argument: {flag}")
                inline = args.pop(0)
            values[option.long] = inline
        else:
            values[option.long] = True
    return values, positional


def record(tool: str, argv: Sequence[str], config: str | None) -> None:
    target = os.environ.get("MEGAM_FAKE_ARGV_LOG")
    if not target:
        return
    entry: dict[str, object] = {
        "tool": tool,
        "argv": [tool, *argv],
        "cwd": os.getcwd(),
        "env": sorted(os.environ),
        "config": config,
    }
    if os.environ.get("MEGAM_FAKE_LIST_CWD") == "1":
        entry["cwd_files"] = sorted(
            os.path.relpath(os.path.join(top, name))
            for top, _, names in os.walk(".")
            for name in names
        )
    if config and os.path.exists(config):
        entry["config_mode"] = oct(os.stat(config).st_mode & 0o777)
        entry["config_dir_mode"] = oct(os.stat(os.path.dirname(config)).st_mode & 0o777)
    with open(target, "a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")


def out(text: str = "") -> None:
    print(text, flush=True)


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def extra_lines(prefix: str) -> None:
    pause = float(os.environ.get("MEGAM_FAKE_LINE_SECONDS") or 0)
    for number in range(int(os.environ.get("MEGAM_FAKE_LINES") or 0)):
        time.sleep(pause)
        out(f"{prefix}progress line {number + 1}")


def hang_if_asked(message: str) -> None:
    """Block forever (until signalled) with a grandchild in the same process group."""
    if os.environ.get("MEGAM_FAKE_HANG") != "1":
        return
    if os.environ.get("MEGAM_FAKE_IGNORE_TERM") == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = subprocess.Popen(["sleep", "600"])
    pids = os.environ.get("MEGAM_FAKE_PIDS")
    if pids:
        with open(pids, "w", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()} {grandchild.pid}\n")
    out(message)
    while True:
        time.sleep(1)


def now_stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
