"""A herk node: the master, its worker actors, its heartbeat, its control queue and cancel feed.

``start()`` declares the topology, starts the workers, catches up with the durable cancels, and
only then consumes ``herk.requests``, with a prefetch equal to the number of workers (a node
never hoards work it cannot start). ``stop()`` drains: it stops taking work, hands back what has
not started, lets running jobs finish within the grace period, then stops the rest and hands back
what may safely run elsewhere.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import structlog

import megam
from herk import metrics
from herk.acceptance import AcceptancePolicy
from herk.bridge import LoopBridge
from herk.cancels import CancelFeed
from herk.catalogue import Catalogue, load_catalogue
from herk.events import EventPublisher
from herk.guardian import Guardian
from herk.heartbeat import Heartbeats
from herk.intake import Intake, capacity
from herk.master import Master
from herk.orphans import LOCK_PATIENCE, GroupRegistry, groups_directory
from herk.outbox import EventOutbox, outbox_directory
from herk.pool import WorkerPool
from herk.sampler import LocalNodeSampler
from herk.worker import worker_factory
from megam import log, topology, wire
from megam.bus import Bus, Delivery, Subscription
from megam.config import Settings
from megam.secrets import Sealer

logger = log.get("herk.node")

DEFAULT_HEARTBEAT_SECONDS = 5.0
DEFAULT_SAMPLE_SECONDS = 10.0
"""Megam's gmond reported every 10 s."""
STOP_MARGIN = 5.0
OUTBOX_GRACE = 5.0
"""At a stop, how long the events still buffered may take to reach the broker."""
"""After asking in-flight jobs to stop, how long beyond their kill grace to wait for them."""


class HerkNode:
    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        sealer: Sealer,
        *,
        catalogue: Catalogue | None = None,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
        policy: AcceptancePolicy | None = None,
        sample_seconds: float = DEFAULT_SAMPLE_SECONDS,
    ) -> None:
        self.settings = settings
        self.name = settings.herk_name
        self.bus = bus
        self.sealer = sealer
        self.catalogue = catalogue
        self.heartbeat_seconds = heartbeat_seconds
        self.policy = policy or AcceptancePolicy()
        self.started_at = 0.0
        self.draining = False
        self._master: Master | None = None
        self._pool: WorkerPool | None = None
        self._events: EventPublisher | None = None
        self._intake: Intake | None = None
        self._control: Subscription | None = None
        self._cancels: CancelFeed | None = None
        self._heartbeats: Heartbeats | None = None
        self._outbox: EventOutbox | None = None
        self.sample_seconds = sample_seconds
        self._sampling: asyncio.Task[None] | None = None
        self._groups: GroupRegistry | None = None
        self._guardian: Guardian | None = None
        self._stopped = False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self.catalogue is None:
            self.catalogue = await asyncio.to_thread(load_catalogue, self.settings.actors_dir)
        data_dir = Path(self.settings.data_dir)
        await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
        # Before the first job: a group this node records must never be taken for a leftover.
        # Patient: the guardian of this node's previous run may be reaping (milliseconds).
        directory = groups_directory(data_dir, self.name)
        groups = await asyncio.to_thread(GroupRegistry.open, directory, patience=LOCK_PATIENCE)
        self._groups = groups
        with structlog.contextvars.bound_contextvars(reaper="node"):
            await asyncio.to_thread(groups.reap)  # what a guardian killed with its node left
        await self._guard(directory)
        # gateway.events is declared here too: a terminal status confirmed into it is the
        # "safely recorded" that lets herk ack, even before any gateway has started.
        await self.bus.declare(topology.EXCHANGES, topology.HERK_QUEUES + topology.GATEWAY_QUEUES)
        bridge = LoopBridge(asyncio.get_running_loop())
        self._outbox = EventOutbox(self.bus, outbox_directory(data_dir, self.name))
        await self._outbox.start()  # what this node left undelivered when it last stopped
        self._events = EventPublisher(self.bus, self.name, self._outbox)
        beat_every = self.heartbeat_seconds
        self._heartbeats = Heartbeats(self.bus, self._events, beat_every, self.heartbeat)
        workers = worker_factory(self.name, self._events, data_dir, groups)
        self._pool = WorkerPool(self.settings.workers, workers, bridge)
        metrics.WORKERS.inc(self._pool.size)
        self._master = Master(
            self.name,
            self.bus,
            self.sealer,
            self.catalogue,
            self._pool,
            self._events,
            bridge,
            self.policy,
            on_capacity_change=self._adjust_intake,
            on_accepted=self._send_heartbeat,
        )
        metrics.track_bus(self.bus)
        self.started_at = time.time()
        self._control = await self.bus.consume_temporary(
            [
                (topology.CONTROL.name, topology.control_key(None)),
                (topology.CONTROL.name, topology.control_key(self.name)),
            ],
            self._on_control,
            prefetch=16,
        )
        self._cancels = CancelFeed(self.bus, self.name, self._master.cancel)
        await self._cancels.start()  # before any request: a cancelled job must never start
        self._intake = Intake(self.bus, self._master.handle, self._free_capacity)
        await self._intake.resize(self._free_capacity())
        self._heartbeats.start()
        if self.sample_seconds > 0:
            sampler = LocalNodeSampler(data_dir / "nodes", self.bus, self.sample_seconds)
            self._sampling = asyncio.create_task(sampler.run())
        logger.info(
            "herk.started",
            herk=self.name,
            workers=self.settings.workers,
            job_types=list(self.catalogue),
        )

    async def stop(self, grace: float = 30.0) -> None:
        """Stop taking work, give in-flight jobs ``grace`` seconds, stop the rest, shut down."""
        if self._stopped or self._master is None:
            await self._release_groups()  # a start that failed half-way may hold them
            if self._outbox is not None:
                await self._outbox.close(0)  # idempotent: what it holds is kept on disk
            return
        self._stopped = True
        if self._heartbeats is not None:
            self._heartbeats.stopping = True
        master = self._master
        await self.drain()
        if self._control is not None:
            await _quietly(self._control.cancel())
        if self._cancels is not None:
            await _quietly(self._cancels.stop())
        if not await master.wait_idle(grace):
            logger.warning("herk.stopping_jobs", jobs=master.in_flight())
            master.stop_all(f"herk node {self.name} stopping")
            await master.wait_idle(master.longest_kill_grace + STOP_MARGIN)
        master.give_up_on_broker()
        if self._outbox is not None:
            # Delivered now if the broker is there; else kept on disk for this node's next start.
            await self._outbox.close(OUTBOX_GRACE)
            await master.wait_idle(STOP_MARGIN)  # flights that waited for a confirm unwind
        if self._sampling is not None:
            self._sampling.cancel()
            await asyncio.gather(self._sampling, return_exceptions=True)
        if self._heartbeats is not None:
            await self._heartbeats.stop()
        await self._send_heartbeat()
        # Whatever is still unacknowledged goes back to the queue when the channels close.
        if self._intake is not None:
            await self._intake.close()
        assert self._pool is not None
        metrics.WORKERS.dec(self._pool.size)
        self._pool.stop()
        await self._release_groups()
        logger.info("herk.stopped", herk=self.name)

    async def drain(self) -> None:
        """Stop taking new requests; jobs already held run to their end."""
        if self.draining:
            return
        self.draining = True
        if self._master is not None:
            self._master.stop_accepting()
        if self._intake is not None:
            await _quietly(self._intake.stop_receiving())
        if self._master is not None:
            self._master.hand_back_waiting(f"herk node {self.name} draining")
        await self._send_heartbeat()
        logger.info("herk.draining", herk=self.name)

    async def scale(self, workers: int) -> None:
        """Resize the worker pool and consume with a matching prefetch."""
        if workers < 1 or self._pool is None or self._master is None:
            raise ValueError("a herk node needs at least one worker")
        before = self._pool.size
        await self._pool.resize(workers)
        metrics.WORKERS.inc(workers - before)
        if self._intake is not None:
            await self._intake.resize(self._free_capacity())
        logger.info("herk.scaled", herk=self.name, workers=workers)
        await self._send_heartbeat()

    def _free_capacity(self) -> int:
        if self._pool is None or self._master is None:
            return 0
        return capacity(self._pool.size, self._master.accepted_running, self._master.long_running)

    def _adjust_intake(self) -> None:
        if self._intake is not None:
            self._intake.adjust()

    # -- what the node tells and hears -----------------------------------------------------

    def heartbeat(self) -> wire.Heartbeat:
        master, pool = self._master, self._pool
        return wire.Heartbeat(
            herk=self.name,
            workers=pool.size if pool else 0,
            busy=pool.busy if pool else 0,
            inflight=master.in_flight() if master else [],
            version=megam.__version__,
            started_at=self.started_at,
            draining=self.draining,
            at=wire.now(),
            jobs=master.held_jobs() if master else [],
            interval=self.heartbeat_seconds,
        )

    async def _send_heartbeat(self) -> None:
        if self._heartbeats is not None:
            await self._heartbeats.send()

    async def _on_control(self, delivery: Delivery) -> None:
        try:
            command = wire.decode(delivery.body, wire.ControlCommand)
        except wire.WireError as exc:
            logger.warning("control.rejected", reason=exc.reason)
            await delivery.ack()
            return
        await delivery.ack()  # commands are not jobs: acting on one twice is harmless
        logger.info("control.received", command=command.command, job_id=command.job_id)
        if command.command == "cancel" and command.job_id and self._master is not None:
            self._master.cancel(command.job_id, command.requested_by)
        elif command.command == "drain":
            await self.drain()
        elif command.command == "scale" and command.workers:
            try:
                await self.scale(command.workers)
            except ValueError as exc:
                logger.warning("control.scale_refused", reason=str(exc))
        elif command.command == "ping":
            await self._send_heartbeat()

    async def _guard(self, directory: Path) -> None:
        """Spawn the guardian that reaps this node's jobs the moment it dies (herk.guardian)."""
        try:
            guardian = await asyncio.to_thread(Guardian.spawn, directory, self.settings.log_level)
        except OSError as exc:
            logger.warning(
                "herk.no_guardian",
                error=str(exc),
                reason="if this node is killed, its jobs run on until it starts again",
            )
            return
        self._guardian = guardian
        guardian.watch(asyncio.get_running_loop(), _guardian_lost)

    async def _release_groups(self) -> None:
        """Let another node of this name take over the records (a restart in this process):
        the lock first, then the guardian, which reaps what a job stuck past the stop left."""
        if self._groups is not None:
            self._groups.close()
        guardian, self._guardian = self._guardian, None
        if guardian is not None:
            guardian.unwatch()
            await asyncio.to_thread(guardian.dismiss)

    @property
    def intake_prefetch(self) -> int:
        """The prefetch of the live ``herk.requests`` consumer (0: receiving nothing)."""
        return self._intake.prefetch if self._intake is not None else 0

    @property
    def master(self) -> Master | None:
        return self._master

    @property
    def pool(self) -> WorkerPool | None:
        return self._pool


def _guardian_lost(returncode: int) -> None:
    logger.warning(
        "herk.guardian_lost",
        returncode=returncode,
        reason="if this node is killed, its jobs run on until it starts again",
    )


async def _quietly(step: Any) -> None:
    """Shutdown steps go on even if one fails (a broker already gone, say)."""
    try:
        await step
    except Exception as exc:
        logger.warning("herk.shutdown_step_failed", error=repr(exc))
