"""Running a service process: uvloop, JSON logs, and a graceful stop on SIGTERM/SIGINT.

The first signal cancels the service's main task, whose ``finally`` blocks stop consuming and let
in-flight work finish; a second signal exits at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable

import uvloop

from megam import log

logger = log.get("megam.process")


def run(main: Callable[[], Awaitable[None]], *, log_level: str = "info") -> int:
    log.configure(log_level)
    return uvloop.run(_supervise(main))


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


async def wait_forever() -> None:
    await asyncio.Event().wait()
