"""Running a service process: uvloop, JSON logs, and a graceful stop on SIGTERM/SIGINT.

The first signal cancels the service's main task, whose ``finally`` blocks stop consuming and let
in-flight work finish; a second signal exits at once. A service that refuses to start (its broker
is unreachable, its worker id is taken, its configuration is wrong) says why in one line on stderr
and exits with :data:`EXIT_REFUSED`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Final

import uvloop

from megam import log

logger = log.get("megam.process")

EXIT_REFUSED: Final = 3


def run(
    main: Callable[[], Awaitable[None]],
    *,
    name: str,
    log_level: str = "info",
    refusals: tuple[type[BaseException], ...] = (),
) -> int:
    """Run ``main`` until it returns or a signal stops it; ``refusals`` are startup failures."""
    log.configure(log_level)
    try:
        return uvloop.run(_supervise(main))
    except refusals as exc:
        logger.error("process.refused", error=str(exc))
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_REFUSED


async def _supervise(main: Callable[[], Awaitable[None]]) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def first_signal(signum: int) -> None:
        logger.info("process.stopping", signal=signal.Signals(signum).name)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, second_signal)
        task.cancel()

    def second_signal() -> None:
        logger.warning("process.killed", reason="second signal during graceful stop")
        os._exit(130)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, first_signal, sig)
    try:
        await main()
    except asyncio.CancelledError:
        return 0
    return 0
