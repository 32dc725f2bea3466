"""A TCP relay between a client and RabbitMQ: drop the client's bytes silently, cut it off, or
take the broker away from it altogether (an outage: every connection cut, new ones refused).

Real sockets and the real broker: the network faults a herk node meets (an ack lost on the way,
a connection that dies) made on demand, from inside the test.
"""

from __future__ import annotations

import asyncio


class TcpProxy:
    """A TCP relay between a client and RabbitMQ that can silently drop the client's bytes."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.dropping = False
        self.refusing = False
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.url = ""

    @classmethod
    async def start(cls, amqp_url: str) -> TcpProxy:
        scheme, rest = amqp_url.split("@", 1)
        hostport, vhost = rest.split("/", 1)
        host, port = hostport.split(":")
        proxy = cls((host, int(port)))
        proxy.server = await asyncio.start_server(proxy._serve, "127.0.0.1", 0)
        listening = proxy.server.sockets[0].getsockname()[1]
        proxy.url = f"{scheme}@127.0.0.1:{listening}/{vhost}"
        return proxy

    def blackhole(self) -> None:
        self.dropping = True

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in self.writers:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:  # the broker is away: the client sees its connection closed at once
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, upstream_writer]
        await asyncio.gather(
            self._pump(reader, upstream_writer, dropping=True),
            self._pump(upstream_reader, writer, dropping=False),
            return_exceptions=True,
        )

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, dropping: bool
    ) -> None:
        while data := await reader.read(65536):
            if not (dropping and self.dropping):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def cut(self) -> None:
        """Drop every relayed connection; new ones are still accepted (the client reconnects)."""
        self.dropping = False
        writers, self.writers = self.writers, []
        for writer in writers:
            writer.close()

    async def outage(self) -> None:
        """The broker goes away for the client: every connection cut, new ones refused."""
        self.refusing = True
        await self.cut()

    def heal(self) -> None:
        self.refusing = False
