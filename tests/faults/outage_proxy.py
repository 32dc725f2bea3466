"""A broker outage for the clients behind a :class:`TcpProxy`, without touching the shared broker:
every relayed connection is cut and new ones are refused until the outage ends."""

from __future__ import annotations

import asyncio

from tests.faults.tcp_proxy import TcpProxy


class OutageProxy(TcpProxy):
    refusing = False

    async def outage(self) -> None:
        self.refusing = True
        await self.cut()

    def restore(self) -> None:
        self.refusing = False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:  # as a broker that is down: the connection closes at once
            writer.close()
            return
        await super()._serve(reader, writer)
