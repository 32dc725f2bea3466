"""Ends the jobs no herk node will ever finish, so no job stays ``running`` for ever.

Herk acknowledges some requests on acceptance (jobs that are not idempotent or may outlive the
broker's consumer timeout); after that only the herk node that holds them can report their end,
and its heartbeats list them (``Heartbeat.jobs``, ``accepted``). Two rules (``docs/wire.md``):

* **The node stopped.** Node H sent no heartbeat for ``herk_silence_beats`` times its interval (at
  least ``herk_silence_min_seconds``: twice the AMQP heartbeat timeout, so a connection the bus
  merely lost is found dead and reconnected first; until then H's jobs only show
  ``herk_node_unreachable``, see gateway/waiting.py), while this gateway was connected and not
  behind on its event queue the whole time (so the silence is H's, not ours or the broker's).
  Every job ``running`` on H that H's last heartbeat listed as accepted ends ``interrupted``:
  "herk node H stopped sending heartbeats". Jobs H listed as not accepted are left alone: the
  broker gives them to the next herk node.
* **The node forgot it.** H still beats, is not draining, and a heartbeat at least one silence
  limit newer than the job's last change lists it neither in ``inflight`` nor in ``jobs``, and
  no other live node holds it: it ends ``interrupted`` ("herk node H no longer holds it").

The end is applied like herk's own status event (attempt unchanged, a later seq) but marked
presumed: a real outcome that arrives first wins, and one the same attempt's runner reports
later (a partitioned node that finished the job after all) replaces the presumed ending
(truthful endings, :func:`gateway.rules.jobs.supersedes`). Once applied, the
same event is published on ``megam.events``, so whoever follows job statuses on the bus (another
gateway, an operator's tooling) sees the job end as it would see herk's own ending.
"""

from __future__ import annotations

import asyncio
import time

from gateway.cluster_view import ClusterSnapshot, ClusterView
from gateway.options import GatewayOptions
from gateway.store import Store, StoreError
from gateway.store.records import HerkNode, Job
from gateway.tail import Notifier
from megam import log, topology, wire
from megam.bus import Bus, BusError

logger = log.get("gateway.reconciler")


class Reconciler:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        cluster: ClusterView,
        notifier: Notifier,
        options: GatewayOptions,
    ) -> None:
        self._store = store
        self._bus = bus
        self._cluster = cluster
        self._notifier = notifier
        self._options = options
        self._watching_since: float | None = None

    async def run(self) -> None:
        while True:
            try:
                await self.reconcile()
            except StoreError as exc:
                logger.warning("reconcile.store_unavailable", error=str(exc))
            except Exception:  # a bug here must not stop the next passes
                logger.exception("reconcile.failed")
            await asyncio.sleep(self._options.reconcile_interval_seconds)

    async def reconcile(self) -> list[str]:
        """One pass; returns the ids of the jobs it ended."""
        now = time.time()
        if not self._connected_since(now):
            return []
        running = await self._store.running_jobs()
        if not running or not await self._caught_up():
            return []
        cluster = await self._cluster.snapshot(fresh=True)
        ended: list[str] = []
        for job in running:
            reason = self._verdict(job, cluster, now)
            if reason is not None and await self._interrupt(job, reason, now):
                ended.append(job.id)
        return ended

    def _connected_since(self, now: float) -> bool:
        """Track since when this gateway hears the event queue without a break."""
        if not self._bus.connected:
            self._watching_since = None
            return False
        if self._watching_since is None:
            self._watching_since = now
        return True

    async def _caught_up(self) -> bool:
        """True unless events wait in our queue: heartbeats there would make a live node look
        silent."""
        try:
            backlog = await self._bus.queue_depth(topology.GATEWAY_EVENTS.name)
        except Exception as exc:  # unknown backlog: judge nothing this time
            logger.debug("reconcile.backlog_unknown", error=str(exc))
            return False
        return backlog <= self._options.event_prefetch

    def _verdict(self, job: Job, cluster: ClusterSnapshot, now: float) -> str | None:
        herk = cluster.herk(job.herk) if job.herk else None
        if herk is None:
            return None
        limit = cluster.silence_limit(herk)
        silent_for = now - herk.last_seen
        if silent_for > limit:
            heard_long_enough = (
                self._watching_since is not None and now - self._watching_since > limit
            )
            if heard_long_enough and _accepted_there(herk, job):
                return (
                    f"herk node {herk.name} stopped sending heartbeats ({silent_for:.0f} s "
                    "without one); the job was accepted there, so nothing else will finish it"
                )
            return None
        forgotten = (
            not herk.draining
            and herk.last_seen - job.updated_at > limit
            and not any(node.holds(job.id) for node in cluster.alive)
        )
        if forgotten:
            return (
                f"herk node {herk.name} no longer holds the job: its heartbeats stopped "
                "listing it without an outcome"
            )
        return None

    async def _interrupt(self, job: Job, reason: str, now: float) -> bool:
        event = wire.StatusEvent(
            job_id=job.id,
            node=job.node_name,
            account=job.account_id,
            type=job.job_type,
            state=wire.JobState.INTERRUPTED,
            attempt=max(job.attempt, 1),
            seq=max(job.seq + 1, 2),
            reason=reason,
            herk=job.herk,
            correlation_id=job.correlation_id,
            at=now,
        )
        outcome = await self._store.apply_status(event, presumed=True)
        if outcome.applied and outcome.node_id is not None:
            logger.warning("job.interrupted", job_id=job.id, herk=job.herk, reason=reason)
            self._notifier.notify(outcome.node_id, status=True)
            await self._announce(event)
        return outcome.applied

    async def _announce(self, event: wire.StatusEvent) -> None:
        # the store already holds the end: a lost announcement loses no state, so no retry
        try:
            body = wire.encode(event)
            await self._bus.publish(topology.EVENTS.name, topology.status_key(event.node), body)
        except BusError as exc:
            logger.warning("job.interrupted_unannounced", job_id=event.job_id, error=str(exc))


def _accepted_there(herk: HerkNode, job: Job) -> bool:
    if herk.held:
        return any(
            h.job_id == job.id and h.attempt == job.attempt and h.accepted for h in herk.held
        )
    return job.id in herk.inflight  # a herk node that predates ``jobs``: its in-flight list
