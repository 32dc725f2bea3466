"""An HMAC-signing client of the gateway's ``/v1`` API, with a resumable SSE follower."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from megam import hmac
from megam.backoff import Backoff


class ApiError(Exception):
    def __init__(self, status: int, message: str, more: str = "") -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.more = more


@dataclasses.dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    data: Any
    id: str | None


class ApiClient:
    def __init__(
        self,
        url: str,
        email: str | None = None,
        api_key: str | None = None,
        *,
        algorithm: hmac.Algorithm = "sha1",
    ) -> None:
        self.url = url.rstrip("/")
        self._prefix = urlsplit(self.url).path.rstrip("/")
        self.email = email
        self.api_key = api_key
        self.algorithm = algorithm
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ApiClient:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10)
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()

    def _headers(self, path: str, body: bytes) -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self.email and self.api_key:
            headers.update(
                hmac.sign_headers(
                    self.email, self.api_key, self._prefix + path, body, self.algorithm
                )
            )
        return headers

    async def get(self, path: str, **params: Any) -> Any:
        return await self._request("GET", path, None, params)

    async def post(self, path: str, payload: Any) -> Any:
        return await self._request("POST", path, payload, {})

    async def _request(self, method: str, path: str, payload: Any, params: dict[str, Any]) -> Any:
        assert self._session is not None, "use ApiClient as an async context manager"
        body = orjson.dumps(payload) if payload is not None else b""
        target = hmac.request_target(path, params)  # the query is part of what is signed
        try:
            async with self._session.request(
                method,
                self.url + target,
                data=body or None,
                headers=self._headers(target, body),
                timeout=aiohttp.ClientTimeout(total=60),
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except aiohttp.ClientConnectionError as exc:
            raise ApiError(0, f"cannot reach the gateway at {self.url}: {exc}") from None
        data = orjson.loads(raw) if raw else None
        if status >= 400:
            if isinstance(data, dict):
                raise ApiError(status, str(data.get("msg", data)), str(data.get("more", "")))
            raise ApiError(status, raw.decode(errors="replace"))
        return data

    async def follow(
        self, path: str, *, tail: int | None = None, last_event_id: str | None = None
    ) -> AsyncIterator[SseEvent]:
        """Server-Sent Events from ``path``, reconnecting with ``Last-Event-ID`` after a drop."""
        assert self._session is not None
        backoff = Backoff(first=0.2, cap=5.0)
        while True:
            resuming = last_event_id is not None
            target = hmac.request_target(path, {"tail": None if resuming else tail})
            headers = self._headers(target, b"")
            headers["Accept"] = "text/event-stream"
            if last_event_id is not None:
                headers["Last-Event-ID"] = last_event_id
            try:
                async with self._session.get(
                    self.url + target, headers=headers
                ) as resp:
                    if resp.status >= 400:
                        data = orjson.loads(await resp.read() or b"{}")
                        raise ApiError(
                            resp.status, str(data.get("msg", data)), str(data.get("more", ""))
                        )
                    backoff.reset()
                    async for event in _parse_sse(resp.content):
                        if event.id is not None:
                            last_event_id = event.id
                        yield event
            except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
                await backoff.wait()


async def _parse_sse(stream: aiohttp.StreamReader) -> AsyncIterator[SseEvent]:
    event, data, event_id = "message", [], None
    async for raw in stream:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                yield SseEvent(event, orjson.loads("\n".join(data)), event_id)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value
