"""Gateway fixtures: the real app on the embedded bus and a SQLite file, a signing client, and a
stand-in for herk that speaks only the wire contract (it publishes real ``wire`` events)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from cryptography.fernet import Fernet

from gateway.app import create_app, server_limits
from gateway.options import GatewayOptions
from megam import hmac, topology, wire
from megam.bus import Bus, Delivery
from megam.bus.embedded import EmbeddedBus
from megam.config import Settings
from megam.ids import LocalIdSource
from megam.secrets import Sealer
from megam.snowflake import Generator
from tests.polling import poll_until

T = TypeVar("T")

OPS_EMAIL = "ops@example.com"
"""The cluster operator of every test app (``MEGAM_ADMIN_EMAILS``)."""

FAST = GatewayOptions(
    publish_wait_seconds=1.0,
    outbox_interval_seconds=0.05,
    outbox_max_backoff_seconds=0.2,
    keepalive_seconds=0.5,
    admin_emails=frozenset({OPS_EMAIL}),
)


@dataclasses.dataclass
class Api:
    """An HTTP client that signs every request as Megam's clients do."""

    client: TestClient
    email: str
    api_key: str
    algorithm: hmac.Algorithm = "sha1"

    def headers(self, path: str, body: bytes = b"") -> dict[str, str]:
        return hmac.sign_headers(self.email, self.api_key, path, body, self.algorithm)

    async def get(self, path: str, **params: Any) -> ClientResponse:
        target = hmac.request_target(path, params)  # the query is signed too
        return await self.client.get(target, headers=self.headers(target))

    async def post(self, path: str, body: Any) -> ClientResponse:
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        return await self.client.post(path, data=raw, headers=self.headers(path, raw))

    async def ok(self, path: str, **params: Any) -> Any:
        response = await self.get(path, **params)
        assert response.status == 200, await response.text()
        return await response.json()

    async def created(self, path: str, body: Any) -> Any:
        response = await self.post(path, body)
        assert response.status == 201, await response.text()
        return await response.json()

    async def launch(self, name: str, cloud: str = "local", **extra: Any) -> list[str]:
        """Launch on a predef cloud; return the job ids."""
        body = {"node_name": name, "predefcloud": cloud, "run_list": ["role[web]"], **extra}
        messages = await self.created("/v1/nodes/content", body)
        return [m["job_id"] for m in messages if m["msg_type"] == "info"]

    async def add_local_cloud(self, name: str = "local") -> None:
        await self.created(
            "/v1/predefclouds/content", {"name": name, "spec": {"type_name": "local"}}
        )

    async def node(self, name: str) -> dict[str, Any]:
        return await self.ok(f"/v1/nodes/{name}")

    async def job(self, job_id: str) -> dict[str, Any]:
        return await self.ok(f"/v1/jobs/{job_id}")


class Gateway:
    """The app under test, the bus it runs on, and ways in for a test."""

    def __init__(self, client: TestClient, bus: Bus, sealer: Sealer, db: Path) -> None:
        self.client = client
        self.bus = bus
        self.sealer = sealer
        self.db = db
        self._emails = itertools.count(1)

    def stored_bytes(self) -> bytes:
        """Everything SQLite has on disk, write-ahead log included."""
        files = (self.db, self.db.with_name(self.db.name + "-wal"))
        return b"".join(f.read_bytes() for f in files if f.exists())

    async def onboard(self, email: str | None = None, **extra: Any) -> Api:
        email = email or f"user{next(self._emails)}@example.com"
        response = await self.client.post("/v1/accounts/content", json={"email": email, **extra})
        assert response.status == 201, await response.text()
        account = await response.json()
        return Api(self.client, account["email"], account["api_key"])

    async def tenant(self) -> Api:
        """A new account with a ``local`` cloud."""
        api = await self.onboard()
        await api.add_local_cloud()
        return api

    async def operator(self) -> Api:
        """The cluster operator (also a tenant with a ``local`` cloud): may call every route."""
        api = await self.onboard(OPS_EMAIL)
        await api.add_local_cloud()
        return api


class Herk:
    """Plays herk's side of the wire contract: real events on the real bus."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def status(
        self, job: dict[str, Any], state: str, *, seq: int, attempt: int = 1, **extra: Any
    ) -> None:
        event = wire.StatusEvent(
            job_id=job["id"],
            node=job["node_name"],
            account=extra.pop("account", None) or job["account"],
            type=job["command"]["type"],
            state=wire.JobState(state),
            attempt=attempt,
            seq=seq,
            at=time.time(),
            **extra,
        )
        await self.publish(topology.status_key(event.node), wire.encode(event))

    async def logs(
        self, job: dict[str, Any], texts: list[str], *, first_seq: int = 0, attempt: int = 1
    ) -> None:
        lines = [
            wire.LogLine(seq=first_seq + i, stream="stdout", text=text, at=time.time())
            for i, text in enumerate(texts)
        ]
        event = wire.LogEvent(
            job_id=job["id"],
            node=job["node_name"],
            account=job["account"],
            attempt=attempt,
            lines=lines,
        )
        await self.publish(topology.log_key(event.job_id), wire.encode(event))

    async def publish(self, routing_key: str, body: bytes) -> None:
        await self.bus.publish(topology.EVENTS.name, routing_key, body)


class Collector:
    """Consumes a queue and keeps what arrives (acknowledged)."""

    def __init__(self) -> None:
        self.items: list[Delivery] = []
        self._arrived = asyncio.Condition()

    async def __call__(self, delivery: Delivery) -> None:
        await delivery.ack()
        async with self._arrived:
            self.items.append(delivery)
            self._arrived.notify_all()

    async def wait_for(self, count: int, timeout: float = 10) -> list[Delivery]:
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.items) >= count)
        return self.items


async def _job_of(api: Api, job_id: str) -> dict[str, Any]:
    job = await api.job(job_id)
    account = await api.ok(f"/v1/accounts/{api.email}")
    return {**job, "account": account["id"]}


@pytest.fixture
def eventually() -> Callable[..., Awaitable[Any]]:
    return poll_until


@pytest.fixture
def job_of() -> Callable[[Api, str], Awaitable[dict[str, Any]]]:
    """The job as the API shows it, plus its account id (what herk reads from its JobRequest)."""
    return _job_of


@pytest.fixture
def launched(gateway: Gateway) -> Callable[..., Awaitable[tuple[Api, dict[str, Any]]]]:
    """A new tenant with one launched local node, and its create job as herk knows it."""

    async def launch(name: str = "web.local") -> tuple[Api, dict[str, Any]]:
        api = await gateway.tenant()
        [job_id] = await api.launch(name)
        return api, await _job_of(api, job_id)

    return launch


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[str]:
    """A MongoDB wire-protocol server (SecantusDB, in memory) for the whole session: its URI."""
    secantus = pytest.importorskip("secantus", reason="pip install -e '.[test]' (secantusdb)")
    with secantus.SecantusDBServer(storage_path=":memory:", ttl_sweep_seconds=0.5) as server:
        yield server.uri


_databases = itertools.count(1)


@pytest.fixture
def mongo_url(mongo_server: str) -> str:
    """A database of its own on the session's server, for one test."""
    return f"{mongo_server.rstrip('/')}/megam_test_{next(_databases)}"


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(Fernet.generate_key())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(data_dir=tmp_path)


@pytest.fixture
async def embedded_bus() -> AsyncIterator[Bus]:
    bus = EmbeddedBus()
    await bus.connect()
    yield bus
    await bus.close()


AppFactory = Callable[..., web.Application]


@pytest.fixture
def make_app(settings: Settings, sealer: Sealer, tmp_path: Path) -> AppFactory:
    def make(bus: Bus, options: GatewayOptions = FAST) -> web.Application:
        return create_app(
            settings,
            bus,
            LocalIdSource(Generator(1)),
            sealer,
            f"sqlite:///{tmp_path / 'megam.db'}",
            options=options,
        )

    return make


@pytest.fixture
async def gateway(
    aiohttp_client: Any, embedded_bus: Bus, make_app: AppFactory, sealer: Sealer, tmp_path: Path
) -> Gateway:
    client = await aiohttp_client(make_app(embedded_bus), server_kwargs=server_limits(FAST))
    return Gateway(client, embedded_bus, sealer, tmp_path / "megam.db")


@pytest.fixture
def gateway_with(
    aiohttp_client: Any, embedded_bus: Bus, make_app: AppFactory, sealer: Sealer, tmp_path: Path
) -> Callable[..., Awaitable[Gateway]]:
    """The gateway with some options changed from the test defaults (use instead of
    ``gateway``, not beside it: both would share one database)."""

    async def make(**changes: Any) -> Gateway:
        options = dataclasses.replace(FAST, **changes)
        app = make_app(embedded_bus, options)
        client = await aiohttp_client(app, server_kwargs=server_limits(options))
        return Gateway(client, embedded_bus, sealer, tmp_path / "megam.db")

    return make


@pytest.fixture
async def ops(gateway: Gateway) -> Api:
    """The cluster operator's account."""
    return await gateway.onboard(OPS_EMAIL)


@pytest.fixture
def herk(embedded_bus: Bus) -> Herk:
    return Herk(embedded_bus)


@pytest.fixture
async def job_requests(embedded_bus: Bus, gateway: Gateway) -> Collector:
    """Every JobRequest the gateway publishes, as herk would receive it."""
    collector = Collector()
    await embedded_bus.consume(topology.HERK_REQUESTS.name, collector, prefetch=100)
    return collector


@pytest.fixture
async def dead_events(embedded_bus: Bus, gateway: Gateway) -> Collector:
    collector = Collector()
    await embedded_bus.consume(topology.GATEWAY_EVENTS_DEAD.name, collector, prefetch=100)
    return collector


class SseReader:
    """Reads Server-Sent Events off a streaming response, one event at a time."""

    def __init__(self, response: ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        event: dict[str, Any] = {}
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    raise EOFError("stream ended")
                line = raw.decode().rstrip("\n")
                if line == "":
                    if "data" in event:
                        event["json"] = orjson.loads(event["data"])
                        event.setdefault("event", "message")
                        return event
                    event = {}
                    continue
                if line.startswith(":"):
                    continue  # a comment: keep-alive
                field, _, value = line.partition(": ")
                event[field] = value

    async def lines(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` log-line events, skipping status events."""
        found: list[dict[str, Any]] = []
        while len(found) < count:
            event = await self.next()
            if event["event"] == "message":
                found.append(event)
        return found

    async def status_where(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        while True:
            event = await self.next()
            if event["event"] == "status" and predicate(event["json"]):
                return event


@pytest.fixture
async def open_stream() -> AsyncIterator[Callable[..., Awaitable[SseReader]]]:
    opened: list[ClientResponse] = []

    async def open_(api: Api, node: str, headers: dict[str, str] | None = None, **params: Any):
        target = hmac.request_target(f"/v1/nodes/{node}/logs/stream", params)
        response = await api.client.get(
            target, headers={**api.headers(target), **(headers or {})}
        )
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == "text/event-stream"
        opened.append(response)
        return SseReader(response)

    yield open_
    for response in opened:
        response.close()


@pytest.fixture
def collector() -> Callable[[], Collector]:
    """Makes a consumer that keeps what arrives."""
    return Collector


@pytest.fixture
def signed() -> Callable[[TestClient, str, str], Api]:
    """A signing client for an account onboarded by hand."""
    return Api
