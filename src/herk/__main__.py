"""``python -m herk``: a standalone herk node, for when the ``megam`` CLI is not at hand.

SIGTERM and SIGINT cancel :func:`herk.main.serve`, which stops the node gracefully. A bad job
catalogue or an unreachable broker ends it with a one-line error and exit status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

import uvloop

from herk.catalogue import CatalogueError
from herk.main import serve
from megam import log
from megam.bus import BusError
from megam.config import Settings


async def _run() -> None:
    settings = Settings.from_env()
    log.configure(settings.log_level)
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await serve(settings)


def main() -> int:
    try:
        uvloop.run(_run())
    except (CatalogueError, BusError, ValueError) as exc:
        print(f"herk: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
