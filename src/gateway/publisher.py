"""Handing job messages to RabbitMQ without ever losing one: a transactional outbox.

A launch stores its node, job and outbox entry in one transaction, then tries to publish at once.
Whatever was not confirmed stays in the outbox and the loop here re-publishes it with backoff,
also after a crash. A job may therefore be published twice; its ``message_id`` is the job id,
so consumers can tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

from gateway import metrics
from gateway.group_commit import GroupCommit
from gateway.options import GatewayOptions
from gateway.store import Store, StoreError
from gateway.store.records import OutboxEntry
from megam import log, topology
from megam.backoff import Backoff
from megam.bus import Bus

logger = log.get("gateway.publisher")


def describe(exc: BaseException, wait: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"RabbitMQ did not confirm within {wait:g}s"
    return str(exc) or type(exc).__name__


class JobPublisher:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        options: GatewayOptions,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._bus = bus
        self._options = options
        self._clock = clock
        # the outbox keeps each entry's count of failed publishes; this turns it into a delay
        # (a cap below half a second, as in tests, is every delay)
        cap = options.outbox_max_backoff_seconds
        self._backoff = Backoff(first=min(0.5, cap), cap=cap)
        self._kick = asyncio.Event()
        self._sent: GroupCommit[str, None] = GroupCommit(self._mark_all_sent)

    async def publish_now(self, entries: Sequence[OutboxEntry]) -> str | None:
        """Publish freshly stored entries; on failure leave the rest to the loop.

        Returns None when all were confirmed, else the error that stopped publishing.
        """
        wait = self._options.publish_wait_seconds
        deadline = asyncio.get_running_loop().time() + wait
        for index, entry in enumerate(entries):
            try:
                async with asyncio.timeout_at(deadline):
                    await self._publish(entry)
            except Exception as exc:
                error = describe(exc, wait)
                logger.warning("outbox.publish_failed", job_id=entry.job_id, error=error)
                await self._defer(entries[index:], error)
                self._kick.set()
                return error
            await self._mark_sent(entry.job_id)
            metrics.JOBS_PUBLISHED.labels(path="direct").inc()
        return None

    async def _mark_sent(self, job_id: str) -> None:
        """Record a confirmed publish, in one store transaction with the others confirmed while
        the previous one ran. If the gateway dies before it commits, the outbox publishes the
        job again: a duplicate consumers recognise by its message id, never a loss."""
        await self._sent.submit(job_id)

    async def _mark_all_sent(self, job_ids: list[str]) -> list[None]:
        await self._store.outbox_sent_all(job_ids, self._clock())
        return [None] * len(job_ids)

    async def run(self) -> None:
        """Re-publish what is due, forever: every interval, or at once when kicked."""
        while True:
            try:
                await self.flush()
            except StoreError as exc:
                logger.warning("outbox.store_unavailable", error=str(exc))
            except Exception:
                # the loop is the only thing that re-publishes: it must outlive any one failure
                logger.exception("outbox.flush_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self._options.outbox_interval_seconds)
            self._kick.clear()

    async def flush(self) -> int:
        """Publish the entries due now; return how many the broker confirmed."""
        now = self._clock()
        entries = await self._store.claim_outbox(now, self._options.outbox_lease_seconds, 100)
        wait = self._options.outbox_lease_seconds / 2
        sent = 0
        for index, entry in enumerate(entries):
            try:
                async with asyncio.timeout(wait):
                    await self._publish(entry)
            except Exception as exc:
                # the broker is most likely down for all of them: back off together
                await self._defer(entries[index:], describe(exc, wait))
                break
            await self._store.outbox_sent(entry.job_id, self._clock())
            metrics.JOBS_PUBLISHED.labels(path="outbox").inc()
            logger.info("outbox.republished", job_id=entry.job_id, attempts=entry.attempts + 1)
            sent += 1
        metrics.OUTBOX_PENDING.set(await self._store.outbox_size())
        return sent

    async def _publish(self, entry: OutboxEntry) -> None:
        await self._bus.publish(
            topology.REQUESTS.name,
            entry.routing_key,
            entry.body,
            message_id=entry.job_id,
            correlation_id=entry.correlation_id,
        )

    async def _defer(self, entries: Sequence[OutboxEntry], error: str) -> None:
        now = self._clock()
        try:
            for entry in entries:
                retry_at = now + self._backoff.after(entry.attempts)
                await self._store.outbox_failed(entry.job_id, error, retry_at, now)
        except StoreError as exc:
            # the entries stay claimed until their lease ends, then the loop takes them again
            logger.warning("outbox.defer_failed", error=str(exc))
        metrics.PUBLISH_FAILURES.inc(len(entries))
