"""A RabbitMQ connection over a list of broker URLs: the nodes of one cluster.

``MEGAM_AMQP_URL`` / ``--amqp`` take one URL or a comma-separated list, as the original Megam
took a list of AMQP URIs. The connection is aio-pika's robust connection (channels, consumers
and declarations restored after a reconnect) that moves to the next URL whenever a connection
is lost or an attempt fails, so when a broker node dies the service is on another node at the
next attempt (``reconnect_interval`` later). aio-pika has no list of hosts of its own
(aio-pika #141); the hook used is the robust connection's one transport-connecting step.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aio_pika.robust_connection import RobustConnection
from yarl import URL


def amqp_urls(text: str) -> list[str]:
    """The URLs of a comma-separated list, in order; blanks between commas are ignored."""
    urls = [part.strip() for part in text.split(",") if part.strip()]
    if not urls:
        raise ValueError("an AMQP URL list needs at least one amqp:// URL")
    for url in urls:
        if not url.startswith(("amqp://", "amqps://")):
            raise ValueError(f"not an AMQP URL (amqp://user:password@host:port/vhost): {url!r}")
    return urls


def redact(url: str) -> str:
    """The URL (or comma list) without passwords, for messages and logs."""
    return ",".join(_redact_one(one) for one in url.split(","))


def _redact_one(url: str) -> str:
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1) if "://" in url else ("", url)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:****@{host}" if scheme else f"{user}:****@{host}"


class FailoverConnection(RobustConnection):
    """A robust connection that tries the next URL of its list after each loss or failure."""

    def __init__(self, urls: list[str], *, start: int = 0, **kwargs: Any) -> None:
        self._urls = [URL(url) for url in urls]
        self._at = start % len(self._urls)
        self.failovers = 0
        super().__init__(self._urls[self._at], **kwargs)

    @property
    def current_url(self) -> str:
        return str(self._urls[self._at])

    def _move_on(self) -> None:
        if len(self._urls) > 1:
            self._at = (self._at + 1) % len(self._urls)
            self.url = self._urls[self._at]
            self.failovers += 1

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        if not self._close_called:
            self._move_on()  # the node we were on is gone or going: reconnect elsewhere
        await super()._on_connection_close(closing)

    # RobustConnection's private ``__connect_transport``, by its mangled name: every attempt
    # to (re)connect goes through it, so a failed attempt moves on to the next URL.
    async def _RobustConnection__connect_transport(self) -> None:
        try:
            await super()._RobustConnection__connect_transport()  # type: ignore[misc]
        except BaseException:
            self._move_on()
            raise
