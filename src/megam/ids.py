"""Where services get ids: an in-process generator, or the uid service over HTTP.

Both render Megam's ``PREFIX + decimal`` form. Prefixes are the original's (docs/original.md §5).
The uid service answers ``GET /ids?count=N`` with ``{"ids": [...], "ids_str": [...]}``.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import dataclasses
import itertools
import re
import time
from typing import Final

import aiohttp
import orjson

from megam.snowflake import MAX_ID, Generator

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
MAX_BATCH: Final = 10_000
"""The most ids the uid service gives in one ``GET /ids`` (part of its HTTP contract)."""
_MEGAM_ID: Final = re.compile(r"([A-Z]{3})?([0-9]{1,19})")


def render(prefix: str, snowflake: int) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}{snowflake}"


@dataclasses.dataclass(frozen=True, slots=True)
class ParsedId:
    prefix: str | None
    value: int


def parse(text: str) -> ParsedId:
    """A Megam id (``RIP431662859257118720``) or a bare decimal snowflake."""
    match = _MEGAM_ID.fullmatch(text)
    if match is None:
        raise ValueError(f"{text[:40]!r} is not a Megam id (PREFIX + decimal) nor a decimal id")
    prefix, digits = match.groups()
    if prefix is not None and prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    value = int(digits)
    if value > MAX_ID:
        raise ValueError(f"{digits} does not fit the 63-bit snowflake layout")
    return ParsedId(prefix, value)


class IdServiceUnavailable(RuntimeError):
    """The uid service could not be reached or gave an unusable answer (callers answer 503)."""


class IdSource(abc.ABC):
    @abc.abstractmethod
    async def next_int(self) -> int: ...

    async def next_ints(self, count: int) -> list[int]:
        return [await self.next_int() for _ in range(count)]

    async def next_id(self, prefix: str) -> str:
        return render(prefix, await self.next_int())

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass


class LocalIdSource(IdSource):
    """The in-process generator; waits on the loop (never blocks it) when a millisecond is full."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    async def next_int(self) -> int:
        return await self.generator.next_id_async()

    async def next_ints(self, count: int) -> list[int]:
        return [issued for run in await self.generator.take_async(count) for issued in run]


class RemoteIdSource(IdSource):
    """Ids from the uid service, fetched ``batch`` at a time ahead of use.

    Prefetched ids older than ``max_age_s`` are dropped so that ids stay roughly time-ordered
    across services, as Snowflake's k-sorting promises.
    """

    def __init__(
        self,
        base_url: str,
        *,
        batch: int = 64,
        agent: str = "megam",
        max_age_s: float = 1.0,
        timeout_s: float = 5.0,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self._url = base_url.rstrip("/")
        self._batch = batch
        self._agent = agent
        self._max_age_s = max_age_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._buffer: collections.deque[int] = collections.deque()
        self._fetched_at = 0.0
        self._refill = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    async def next_int(self) -> int:
        if not self._fresh():
            async with self._refill:  # one fetch at a time; the others use what it brought
                if not self._fresh():
                    self._buffer = collections.deque(await self._fetch(self._batch))
                    self._fetched_at = time.monotonic()
        return self._buffer.popleft()

    async def next_ints(self, count: int) -> list[int]:
        if count <= self._batch:
            return await super().next_ints(count)
        values: list[int] = []
        while len(values) < count:
            values += await self._fetch(min(count - len(values), MAX_BATCH))
        return values

    def _fresh(self) -> bool:
        if self._buffer and time.monotonic() - self._fetched_at > self._max_age_s:
            self._buffer.clear()
        return bool(self._buffer)

    async def _fetch(self, count: int) -> list[int]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        url = f"{self._url}/ids"
        try:
            async with self._session.get(
                url, params={"count": str(count), "agent": self._agent}
            ) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise IdServiceUnavailable(f"uid service at {self._url} unreachable: {exc!r}") from exc
        if status != 200:
            shown = body[:200].decode(errors="replace")
            raise IdServiceUnavailable(f"uid service at {self._url} answered {status}: {shown}")
        try:
            return batch_from_answer(body, count)
        except ValueError as exc:
            raise IdServiceUnavailable(f"uid service at {self._url}: {exc}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def batch_from_answer(body: bytes, count: int) -> list[int]:
    """The ``count`` ids of a ``GET /ids`` answer; ValueError if it is not what was asked for."""
    try:
        ids = orjson.loads(body)["ids"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError("malformed answer: no JSON object with an ids list") from exc
    if not isinstance(ids, list) or len(ids) != count:
        raise ValueError(f"asked for {count} ids, got something else")
    if not all(type(value) is int for value in ids) or any(
        later <= earlier for earlier, later in itertools.pairwise(ids)
    ):
        raise ValueError("the ids are not increasing integers")
    return ids
