"""Where services get ids: an in-process generator, or the uid service over HTTP.

Both render Megam's ``PREFIX + decimal`` form. Prefixes are the original's (megam-original.md §5).
"""

from __future__ import annotations

import abc
from typing import Final

import aiohttp

from megam.snowflake import Generator

PREFIXES: Final = frozenset(
    {
        "ACT",
        "NOD",
        "RIP",
        "PRE",
        "PDC",
        "CTO",
        "CTS",
        "SSH",
        "MKP",
        "AON",
        "CON",
        "ADF",
        "BDF",
        "APR",
        "BPR",
        "JOB",
    }
)


def render(prefix: str, snowflake: int) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}{snowflake}"


class IdSource(abc.ABC):
    @abc.abstractmethod
    async def next_int(self) -> int: ...

    async def next_id(self, prefix: str) -> str:
        return render(prefix, await self.next_int())

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass


class LocalIdSource(IdSource):
    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    async def next_int(self) -> int:
        return self.generator.next_id()


class RemoteIdSource(IdSource):
    """Ids from the uid service (``GET /ids?count=N``), fetched a small batch ahead."""

    def __init__(self, base_url: str, *, batch: int = 64, agent: str = "megam") -> None:
        self._url = base_url.rstrip("/")
        self._batch = batch
        self._agent = agent
        self._buffer: list[int] = []
        self._session: aiohttp.ClientSession | None = None

    async def next_int(self) -> int:
        if not self._buffer:
            self._buffer = await self._fetch()
        return self._buffer.pop(0)

    async def _fetch(self) -> list[int]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        async with self._session.get(
            f"{self._url}/ids", params={"count": self._batch, "agent": self._agent}
        ) as resp:
            resp.raise_for_status()
            body = await resp.json()
        return [int(value) for value in body["ids"]]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
