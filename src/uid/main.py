"""Entry points: the standalone service, the in-process id source of ``megam up``, and the CLI.

The worker id is always leased, even when configured: RabbitMQ exclusive queues when
``settings.amqp_url`` is set, file locks under ``settings.data_dir / "uid"`` otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Final

from aiohttp import web

from megam import log, process
from megam.config import Settings
from megam.ids import LocalIdSource
from megam.snowflake import Generator, IdUnavailable
from uid.file_lease import FileLeaser
from uid.keeper import LeaseKeeper, LeasePolicy
from uid.lease import Leaser, LeaseUnavailable
from uid.service import create_app

logger = log.get("uid")

DEFAULT_HOST: Final = "127.0.0.1"
"""Only this machine, as every Megam service by default; ``--host`` opens it wider."""
EXIT_REFUSED: Final = process.EXIT_REFUSED


def leaser_for(settings: Settings) -> Leaser:
    if settings.amqp_url:
        from uid.amqp_lease import AmqpLeaser  # aio-pika is only loaded when a broker is used

        return AmqpLeaser(settings.amqp_url)
    return FileLeaser(settings.data_dir / "uid")


def keeper_for(settings: Settings, *, policy: LeasePolicy | None = None) -> LeaseKeeper:
    return LeaseKeeper(
        leaser_for(settings), settings.datacenter_id, settings.worker_id, policy=policy
    )


@contextlib.asynccontextmanager
async def local_id_source(
    settings: Settings, *, policy: LeasePolicy | None = None
) -> AsyncIterator[LocalIdSource]:
    """A leased in-process generator (for ``megam up``); the lease is released on exit."""
    keeper = keeper_for(settings, policy=policy)
    generator = await keeper.start()
    try:
        yield LocalIdSource(generator)
    finally:
        await keeper.stop()


@dataclasses.dataclass(slots=True)
class RunningService:
    keeper: LeaseKeeper
    runner: web.AppRunner
    port: int

    @property
    def generator(self) -> Generator:
        return self.keeper.generator

    async def stop(self) -> None:
        try:
            await self.runner.cleanup()
        finally:
            await self.keeper.stop()


async def start(
    settings: Settings, *, host: str = DEFAULT_HOST, policy: LeasePolicy | None = None
) -> RunningService:
    """Lease a worker id and listen on ``settings.uid_port`` (0: any free port)."""
    keeper = keeper_for(settings, policy=policy)
    generator = await keeper.start()
    try:
        runner = web.AppRunner(
            create_app(generator, status=keeper.status), access_log=None, handle_signals=False
        )
        await runner.setup()
        await web.TCPSite(runner, host, settings.uid_port).start()
    except BaseException:
        await keeper.stop()
        raise
    port = int(runner.addresses[0][1])
    logger.info("uid.listening", host=host, port=port, **keeper.status())
    return RunningService(keeper, runner, port)


async def serve(settings: Settings, *, host: str = DEFAULT_HOST) -> None:
    """Run the standalone service until cancelled; the lease is released on the way out."""
    service = await start(settings, host=host)
    try:
        await asyncio.Future()
    finally:
        await service.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``megam uid [--port P] [--worker-id W] [--datacenter-id D]``."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env(
            uid_port=args.port,
            worker_id=args.worker_id,
            datacenter_id=args.datacenter_id,
            data_dir=args.data_dir,
        )
    except ValueError as exc:
        print(f"megam uid: {exc}", file=sys.stderr)
        return 2
    return process.run(
        lambda: serve(settings, host=args.host),
        name="megam uid",
        log_level=args.log_level or settings.log_level,
        refusals=(LeaseUnavailable, IdUnavailable),
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="megam uid", description="Snowflake ids over HTTP from a leased worker id."
    )
    parser.add_argument("--port", type=int, help="listen port (default $MEGAM_UID_PORT or 7609)")
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"listen address (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--worker-id", type=int, help="0..31; leased all the same (default: first free id)"
    )
    parser.add_argument("--datacenter-id", type=int, help="0..31 (default $MEGAM_DATACENTER_ID)")
    parser.add_argument("--data-dir", help="where file leases live when no broker is configured")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    return parser
