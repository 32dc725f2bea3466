"""A test job that runs until told otherwise, with a grandchild in its process group.

    sleeper.py --pids FILE [--until FILE] [--ignore-term] [--lines N] [--exit N]

Writes "<own pid> <grandchild pid>" to --pids once both run, prints a line, then waits: for the
--until file to appear (then exits with --exit, default 0), or forever. --ignore-term makes only
SIGKILL able to stop it, as a stubborn tool would.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pids", type=Path, required=True)
    parser.add_argument("--until", type=Path)
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--lines", type=int, default=0)
    parser.add_argument("--exit", type=int, default=0)
    args = parser.parse_args()
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = subprocess.Popen(["sleep", "600"])
    partial = args.pids.with_suffix(".tmp")
    partial.write_text(f"{os.getpid()} {grandchild.pid}\n")
    partial.replace(args.pids)
    for number in range(args.lines):
        print(f"line {number + 1}", flush=True)
    print("sleeper started", flush=True)
    while args.until is None or not args.until.exists():
        time.sleep(0.05)
    print("sleeper released", flush=True)
    grandchild.kill()
    grandchild.wait()
    return args.exit


if __name__ == "__main__":
    sys.exit(main())
