"""A test job that fails its first N runs: ``flaky.py --count FILE --fail-times N``.

Each run adds one to the number in FILE; a run whose number is at most N prints an error on
stderr and exits 1, later runs succeed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=Path, required=True)
    parser.add_argument("--fail-times", type=int, required=True)
    args = parser.parse_args()
    run = int(args.count.read_text()) + 1 if args.count.exists() else 1
    args.count.write_text(str(run))
    print(f"flaky run {run}", flush=True)
    if run <= args.fail_times:
        print(f"flaky failure {run}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
