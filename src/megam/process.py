"""Running a service process: uvloop, logs, and a graceful stop on SIGTERM/SIGINT.

The first signal cancels the service's main task, whose ``finally`` blocks stop consuming and let
in-flight work finish; a second signal exits at once. A service that refuses to start (its broker
is unreachable, its worker id is taken, its configuration is wrong) says why in one line on stderr
and exits with :data:`EXIT_REFUSED`.

The process's stdout and stderr are detached (:mod:`megam.outstream`): a closed or stalled reader
costs lines, never the process's ability to stop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Final

import uvloop

from megam import log, outstream

logger = log.get("megam.process")

EXIT_REFUSED: Final = 3


def run(
    main: Callable[[], Awaitable[None]],
    *,
    name: str,
    log_level: str = "info",
    refusals: tuple[type[BaseException], ...] = (),
    log_json: bool | None = None,
) -> int:
    """Run ``main`` until it returns or a signal stops it; ``refusals`` are startup failures.

    ``log_json`` None: JSON logs unless stderr is a terminal."""
    originals = sys.stdout, sys.stderr
    detached = _detach_std_streams()
    log.configure(log_level, json=log_json)
    try:
        return uvloop.run(_supervise(main))
    except refusals as exc:
        logger.error("process.refused", error=str(exc))
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        for writer in detached:
            writer.drain(DRAIN_SECONDS)
        sys.stdout, sys.stderr = originals  # a traceback after this point is still seen


DRAIN_SECONDS: Final = 2.0
"""How long a stopping process waits for a slow reader to take its last lines."""


def _detach_std_streams() -> list[outstream.DetachedWriter]:
    writers = []
    for name in ("stdout", "stderr"):
        stand_in = outstream.detach(getattr(sys, name))
        if stand_in is not None:
            setattr(sys, name, stand_in)
            writers.append(stand_in.writer)
    return writers


async def _supervise(main: Callable[[], Awaitable[None]]) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def first_signal(signum: int) -> None:
        # stop first, say so after: nothing said can keep the process from stopping
        task.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, second_signal)
        logger.info("process.stopping", signal=signal.Signals(signum).name)

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
