"""A test job that prints while it runs: ``chatty.py --runs DIR --job ID --lines N --pause S``.

Creates ``DIR/<job id>.<pid>`` at start (the number of files is the number of runs), then prints
``line 0`` … ``line N-1``, one every S seconds, and exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--job", required=True)
    parser.add_argument("--lines", type=int, required=True)
    parser.add_argument("--pause", type=float, required=True)
    args = parser.parse_args()
    (args.runs / f"{args.job}.{os.getpid()}").touch(exist_ok=False)
    for number in range(args.lines):
        print(f"line {number}", flush=True)
        time.sleep(args.pause)
    return 0


if __name__ == "__main__":
    sys.exit(main())
