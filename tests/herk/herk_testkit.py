"""Helpers for herk's tests: settings, requests, and recorders of what herk publishes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from herk.provision.local import alive
from megam import topology, wire
from megam.bus import Bus, Delivery
from megam.config import Settings
from tests.polling import poll_until

REPO = Path(__file__).resolve().parents[2]
FAKES = REPO / "tests" / "fakes"
"""Stand-ins for knife and chef-client, which cannot be installed here (see their docstrings)."""
BUNDLED_ACTORS = REPO / "actors"
SLEEPER = Path(__file__).resolve().parent / "jobs" / "sleeper.py"

_job_numbers = itertools.count(int(time.time() * 1000) % 10**12)


def settings_for(
    tmp_path: Path, *, workers: int = 2, actors_dir: Path = BUNDLED_ACTORS, name: str = ""
) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        amqp_url=None,
        store_url="sqlite://",
        uid_url=None,
        gateway_port=0,
        uid_port=0,
        herk_metrics_port=0,
        workers=workers,
        herk_name=name or f"herk-test-{uuid.uuid4().hex[:8]}",
        actors_dir=actors_dir,
        secret_key_file=tmp_path / "secret.key",
        log_level="info",
        datacenter_id=0,
        worker_id=None,
    )


def new_job_id() -> str:
    return f"RIP{next(_job_numbers)}"


def job_request(
    job_type: str,
    params: dict | None = None,
    *,
    job_id: str | None = None,
    node: str = "web1.megam.co",
    account: str = "ACT1001",
    sealed: str | None = None,
) -> wire.JobRequest:
    return wire.JobRequest(
        job_id=job_id or new_job_id(),
        type=job_type,
        node=node,
        account=account,
        correlation_id=f"corr-{uuid.uuid4().hex[:8]}",
        params=params or {},
        sealed=sealed,
        created_at=time.time(),
    )


async def submit(bus: Bus, request: wire.JobRequest) -> wire.JobRequest:
    await bus.publish(
        topology.REQUESTS.name,
        topology.request_key(request.type),
        wire.encode(request),
        message_id=request.job_id,
        correlation_id=request.correlation_id,
    )
    return request


async def submit_raw(bus: Bus, body: bytes, routing_key: str = "job.noop") -> None:
    await bus.publish(topology.REQUESTS.name, routing_key, body)


async def control(bus: Bus, command: str, *, herk: str | None = None, **fields: object) -> None:
    message = wire.ControlCommand(command=command, requested_by="tests", at=time.time(), **fields)
    await bus.publish(topology.CONTROL.name, topology.control_key(herk), wire.encode(message))


class EventLog:
    """Everything herk publishes on ``megam.events``, decoded, with waits on conditions."""

    def __init__(self) -> None:
        self.statuses: list[wire.StatusEvent] = []
        self.logs: list[wire.LogEvent] = []
        self.heartbeats: list[wire.Heartbeat] = []
        self._changed = asyncio.Condition()

    async def attach(self, bus: Bus) -> EventLog:
        await bus.consume_temporary(
            [
                (topology.EVENTS.name, "status.#"),
                (topology.EVENTS.name, "log.#"),
                (topology.EVENTS.name, "heartbeat.#"),
            ],
            self._receive,
            prefetch=500,
        )
        return self

    async def _receive(self, delivery: Delivery) -> None:
        kind = delivery.routing_key.split(".", 1)[0]
        if kind == "status":
            self.statuses.append(wire.decode(delivery.body, wire.StatusEvent))
        elif kind == "log":
            self.logs.append(wire.decode(delivery.body, wire.LogEvent))
        else:
            self.heartbeats.append(wire.decode(delivery.body, wire.Heartbeat))
        await delivery.ack()
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, condition: Callable[[], object], what: str, timeout: float = 30):
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(condition)
        except TimeoutError:
            raise AssertionError(
                f"timed out waiting for {what}; statuses: {self.statuses}"
            ) from None
        return condition()

    def status_of(self, job_id: str) -> list[wire.StatusEvent]:
        return [event for event in self.statuses if event.job_id == job_id]

    def states(self, job_id: str) -> list[str]:
        return [str(event.state) for event in self.status_of(job_id)]

    def terminal_now(self, job_id: str) -> wire.StatusEvent | None:
        return next((e for e in self.status_of(job_id) if e.state.terminal), None)

    async def terminal(self, job_id: str, timeout: float = 30) -> wire.StatusEvent:
        return await self.wait_until(
            lambda: self.terminal_now(job_id), f"a terminal status of {job_id}", timeout
        )

    async def state(self, job_id: str, state: str, timeout: float = 30) -> wire.StatusEvent:
        def reached() -> wire.StatusEvent | None:
            return next((e for e in self.status_of(job_id) if str(e.state) == state), None)

        return await self.wait_until(reached, f"{job_id} reaching {state}", timeout)

    def lines(self, job_id: str) -> list[wire.LogLine]:
        return [line for event in self.logs if event.job_id == job_id for line in event.lines]

    def text(self, job_id: str) -> str:
        return "\n".join(line.text for line in self.lines(job_id))


class QueueLog:
    """Deliveries from one durable queue (e.g. ``herk.requests.dead``), acked as they arrive."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self._changed = asyncio.Condition()

    async def attach(self, bus: Bus, queue: str) -> QueueLog:
        await bus.consume(queue, self._receive, prefetch=50)
        return self

    async def _receive(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        await delivery.ack()
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, count: int, timeout: float = 30) -> list[Delivery]:
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(self.deliveries) >= count)
        except TimeoutError:
            raise AssertionError(
                f"expected {count} deliveries, got {len(self.deliveries)}"
            ) from None
        return self.deliveries


def read_pids(path: Path) -> list[int]:
    return [int(pid) for pid in path.read_text().split()]


async def wait_dead(pids: list[int], timeout: float = 10) -> list[int]:
    """The pids still alive after ``timeout`` (empty when all died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        survivors = [pid for pid in pids if alive(pid)]
        if not survivors:
            return []
        await asyncio.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


async def wait_for_file(
    path: Path, timeout: float = 20, unless: Callable[[], object] = lambda: None
) -> None:
    """Wait for ``path``; fail at once if ``unless()`` says it never will (e.g. the job ended)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        ended = unless()
        if ended:
            raise AssertionError(f"{path} will not appear: {ended}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout} s")
        await asyncio.sleep(0.05)


async def started(events: EventLog, data_dir: Path, job_id: str) -> list[int]:
    """The pids a sleeper job wrote once it runs (``{job_id}.pids`` in the data dir)."""
    path = data_dir / f"{job_id}.pids"
    await wait_for_file(path, unless=lambda: events.terminal_now(job_id))
    return read_pids(path)


async def started_again(data_dir: Path, job_id: str, before: list[int]) -> list[int]:
    """The pids of a second run of ``job_id`` (its sleeper rewrites the pids file)."""
    path = data_dir / f"{job_id}.pids"
    await until(lambda: read_pids(path)[0] not in before, f"{job_id} running a second time")
    return read_pids(path)


def release(data_dir: Path, job_id: str) -> None:
    """Let a sleeper job end (it waits for ``{job_id}.release`` in the data dir)."""
    (data_dir / f"{job_id}.release").touch()


async def until(condition: Callable[[], object], what: str, timeout: float = 20) -> None:
    """Poll an in-process condition (a node's own state) until it holds."""
    await poll_until(condition, what, timeout=timeout)


def kill_quietly(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def write_actor(directory: Path, name: str, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.toml"
    path.write_text(f'name = "{name}"\n' + body)
    return path


def sleeper_actor(
    directory: Path,
    name: str = "test.sleep",
    *,
    idempotent: bool = True,
    timeout: float = 60,
    kill_grace: float = 1,
    extra: str = "",
    retry: str = "",
) -> Path:
    """A job type that runs tests/herk/jobs/sleeper.py; it writes its pids to <data_dir>/<job>.pids
    and ends when <data_dir>/<job>.release exists."""
    argv = (
        f'["{{python}}", "{SLEEPER}", "--pids", "{{data_dir}}/{{job_id}}.pids", '
        f'"--until", "{{data_dir}}/{{job_id}}.release"{extra}]'
    )
    return write_actor(
        directory,
        name,
        f'description = "test sleeper"\nidempotent = {str(idempotent).lower()}\n'
        f"timeout = {timeout}\nkill_grace = {kill_grace}\nargv = {argv}\n{retry}",
    )
