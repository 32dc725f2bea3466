"""What the fault tests share: job types that count their real runs, herk node processes, and a
recorder that consumes ``gateway.events`` as the gateway does (docs/wire.md)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

from megam import topology, wire
from megam.bus import Bus, Delivery
from megam.bus.amqp import AmqpBus

REPO = Path(__file__).resolve().parents[2]
RECORD = Path(__file__).resolve().parent / "jobs" / "record.py"


def write_actors(directory: Path, runs: Path) -> Path:
    """``fault.safe`` (idempotent) and ``fault.once`` (not) sleep a little and record each run,
    ``fault.brief`` and ``fault.brief_once`` hardly at all; ``fault.quick`` and
    ``fault.quick_once`` record a run with ``mktemp`` (no interpreter to start)."""
    directory.mkdir(parents=True, exist_ok=True)
    runs.mkdir(parents=True, exist_ok=True)
    record = f'["{{python}}", "{RECORD}", "--runs", "{runs}", "--job", "{{job_id}}", "--seconds", '
    mktemp = f'["mktemp", "{runs}/{{job_id}}.XXXXXXXX"]'
    for name, idempotent, argv in (
        ("fault.safe", True, record + '"0.6"]'),
        ("fault.once", False, record + '"1.5"]'),
        ("fault.brief", True, record + '"0.05"]'),
        ("fault.brief_once", False, record + '"0.05"]'),
        ("fault.quick", True, mktemp),
        ("fault.quick_once", False, mktemp),
    ):
        (directory / f"{name}.toml").write_text(
            f'name = "{name}"\ndescription = "fault test job"\n'
            f"idempotent = {str(idempotent).lower()}\ntimeout = 30\nkill_grace = 1\n"
            f"argv = {argv}\n"
        )
    return directory


@contextlib.asynccontextmanager
async def open_broker(amqp_url: str) -> AsyncIterator[AmqpBus]:
    """The test's own connection (one URL or a cluster's list): it publishes requests and
    plays the gateway."""
    bus = AmqpBus(amqp_url, publish_timeout=120)
    await bus.connect()
    await bus.declare(topology.EXCHANGES, topology.ALL_QUEUES)
    try:
        yield bus
    finally:
        await bus.close()


def runs_of(runs: Path, job_id: str) -> int:
    """How many times the job's process really started."""
    return sum(1 for _ in runs.glob(f"{job_id}.*"))


def new_request(job_type: str, number: int) -> wire.JobRequest:
    return wire.JobRequest(
        job_id=f"RIP{int(time.time() * 1000) % 10**10}{number:05d}",
        type=job_type,
        node="fault1.megam.local",
        account="ACT1001",
        correlation_id=f"fault-{number}",
        created_at=time.time(),
    )


async def submit(bus: Bus, requests: Iterable[wire.JobRequest]) -> list[wire.JobRequest]:
    """Publish each request (confirmed) as the gateway does."""
    sent = list(requests)
    await asyncio.gather(
        *(
            bus.publish(
                topology.REQUESTS.name,
                topology.request_key(request.type),
                wire.encode(request),
                message_id=request.job_id,
                correlation_id=request.correlation_id,
            )
            for request in sent
        )
    )
    return sent


@dataclasses.dataclass
class HerkProcesses:
    """``python -m herk`` nodes against one vhost; all killed at the end of the test."""

    amqp_url: str
    actors: Path
    data_dir: Path
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = dataclasses.field(default_factory=dict)

    def start(
        self,
        name: str,
        *,
        workers: int = 2,
        heartbeat: float = 0.3,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        env = {
            **os.environ,
            "MEGAM_AMQP_URL": self.amqp_url,
            "MEGAM_ACTORS_DIR": str(self.actors),
            "MEGAM_DATA_DIR": str(self.data_dir),
            "MEGAM_SECRET_KEY_FILE": str(self.data_dir / "secret.key"),
            "MEGAM_HERK_NAME": name,
            "MEGAM_HERK_METRICS_PORT": "0",
            "MEGAM_HERK_METRICS_HOST": "127.0.0.1",
            "MEGAM_WORKERS": str(workers),
            "MEGAM_HERK_HEARTBEAT_SECONDS": str(heartbeat),
            "MEGAM_LOG_LEVEL": "warning",
            **(extra_env or {}),
        }
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "wb") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "herk"], env=env, cwd=REPO, stdout=log, stderr=log
            )

    def kill(self, name: str) -> None:
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def terminate(self, name: str, timeout: float = 120) -> int:
        """SIGTERM (a graceful stop) and its exit status."""
        process = self.processes[name]
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=timeout)

    def alive(self, name: str) -> bool:
        return self.processes[name].poll() is None

    def logged(self, name: str, event: str) -> list[dict[str, object]]:
        """The node's log entries named ``event`` since it was last started (warnings and up)."""
        entries = []
        for line in (self.logs / f"{name}.log").read_text().splitlines():
            if line.startswith("{") and (entry := json.loads(line)).get("event") == event:
                entries.append(entry)
        return entries

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


@contextlib.contextmanager
def herk_processes(amqp_url: str, actors: Path, data_dir: Path) -> Iterator[HerkProcesses]:
    nodes = HerkProcesses(amqp_url, actors, data_dir, data_dir / "logs")
    try:
        yield nodes
    finally:
        nodes.stop_all()


class Recorder:
    """Consumes ``gateway.events`` as the gateway would: records each job's status events and
    each herk node's heartbeats, and applies the gateway's rule for a node that stops beating
    (docs/wire.md, Heartbeat): its accepted jobs end ``interrupted``.

    ``silence_floor`` stands in for the documented 15 s so that tests stay short.
    """

    def __init__(self, *, silence_floor: float = 5.0) -> None:
        self.silence_floor = silence_floor
        self.statuses: dict[str, list[wire.StatusEvent]] = {}
        self.logs: dict[str, list[wire.LogLine]] = {}
        self.beats: dict[str, wire.Heartbeat] = {}
        self.beat_seen: dict[str, float] = {}
        self.interrupted_by_rule: dict[str, str] = {}
        self.dead_nodes: set[str] = set()
        self._bus: AmqpBus | None = None
        self._connected_since = time.monotonic()
        self._reconnects = 0
        self._watchdog: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def attach(self, bus: AmqpBus) -> Recorder:
        self._bus = bus
        self._reconnects = bus.reconnects
        await bus.consume(topology.GATEWAY_EVENTS.name, self._receive, prefetch=500)
        self._watchdog = asyncio.create_task(self._watch())
        return self

    async def detach(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)

    def state(self, job_id: str) -> str | None:
        """The job's outcome: the first terminal state of its latest attempt, if any."""
        events = self.statuses.get(job_id, [])
        if events:
            latest = max(e.attempt for e in events)
            for event in events:
                if event.attempt == latest and event.state.terminal:
                    return str(event.state)
        return "interrupted" if job_id in self.interrupted_by_rule else None

    def pending(self, job_ids: Iterable[str]) -> list[str]:
        return [job_id for job_id in job_ids if self.state(job_id) is None]

    async def all_ended(self, job_ids: Iterable[str], timeout: float) -> None:
        wanted = list(job_ids)
        deadline = time.monotonic() + timeout
        while pending := self.pending(wanted):
            if time.monotonic() > deadline:
                states = {
                    j: [f"{e.state}@{e.herk}" for e in self.statuses.get(j, [])] for j in pending
                }
                sample = dict(list(states.items())[:10])
                raise AssertionError(f"{len(pending)} jobs never ended, e.g. {sample}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.5)

    async def until(self, condition: object, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.5)

    async def _receive(self, delivery: Delivery) -> None:
        kind = delivery.routing_key.split(".", 1)[0]
        if kind == "status":
            event = wire.decode(delivery.body, wire.StatusEvent)
            self.statuses.setdefault(event.job_id, []).append(event)
        elif kind == "log":
            batch = wire.decode(delivery.body, wire.LogEvent)
            self.logs.setdefault(batch.job_id, []).extend(batch.lines)
        elif kind == "heartbeat":
            beat = wire.decode(delivery.body, wire.Heartbeat)
            self.beats[beat.herk] = beat
            self.beat_seen[beat.herk] = time.monotonic()
        await delivery.ack()
        self._changed.set()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            assert self._bus is not None
            if self._bus.reconnects != self._reconnects:  # we were cut off too: start over
                self._reconnects = self._bus.reconnects
                self._connected_since = time.monotonic()
            if not await self._caught_up():
                # As the gateway's reconciler: a heartbeat waiting behind a backlog of events is
                # not silence, so nothing is judged until the recorder has read what is queued.
                self._connected_since = time.monotonic()
                continue
            now = time.monotonic()
            for herk, beat in list(self.beats.items()):
                silence = max(3 * beat.interval, self.silence_floor)
                quiet = now - self.beat_seen[herk]
                if herk in self.dead_nodes or min(quiet, now - self._connected_since) < silence:
                    continue
                self.dead_nodes.add(herk)
                for held in beat.jobs:
                    if held.accepted and self._open_at(held.job_id, held.attempt):
                        self.interrupted_by_rule[held.job_id] = f"herk node {herk} stopped"
                self._changed.set()

    async def _caught_up(self) -> bool:
        assert self._bus is not None
        try:
            return await self._bus.queue_depth(topology.GATEWAY_EVENTS.name) == 0
        except Exception:  # the broker is away: we cannot judge anyone's silence
            return False

    def _open_at(self, job_id: str, attempt: int) -> bool:
        return not any(
            e.attempt >= attempt and e.state.terminal for e in self.statuses.get(job_id, [])
        )


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"
