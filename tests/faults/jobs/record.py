"""A fault-test job that records each run: ``record.py --runs DIR --job ID [--seconds S]``.

Creates a new file ``DIR/<job id>.<pid>`` at start (so the number of files is the number of runs),
then sleeps S seconds and exits 0.
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
    parser.add_argument("--seconds", type=float, default=0.0)
    args = parser.parse_args()
    (args.runs / f"{args.job}.{os.getpid()}").touch(exist_ok=False)
    print(f"running {args.job}", flush=True)
    time.sleep(args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
