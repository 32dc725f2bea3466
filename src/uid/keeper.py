"""Keeps a worker-id lease and fences a :class:`Generator` with it.

* Start: lease an id, wait until the clock has passed the previous holder's horizon, persist a
  horizon of our own (now + ``horizon_ms``, or ``detached_horizon_ms`` for a lease that can be
  lost while we run) and only then let the generator issue ids up to it.
* Every ``renew_every_s``: persist a new horizon, then extend the generator's to it. A generator
  whose keeper is stuck stops at its horizon by itself.
* Lease lost (the broker connection died) or renewal failed: stop renewing but keep issuing up to
  the horizon already persisted, which any successor waits out before it issues; lease again,
  preferring the same id. If the id's horizon is still the one we wrote, nobody held it since:
  carry on without a gap. Otherwise wait out the other holder's horizon, as at start.
* Stop: revoke, record the last millisecond really used, release.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

from megam import log
from megam.snowflake import DEFAULT_BACKWARDS_TOLERANCE_MS, Generator, wall_ms
from uid.lease import UNKNOWN_HORIZON, Lease, Leaser, LeaseUnavailable
from uid.service import generator_status

logger = log.get("uid.keeper")


@dataclasses.dataclass(frozen=True, slots=True)
class LeasePolicy:
    horizon_ms: int = 2000
    """How far ahead of the clock a holder may issue; a crashed holder's successor waits this."""
    detached_horizon_ms: int = 60_000
    """The same for a lease that can be lost while its holder runs (a RabbitMQ exclusive queue):
    how long ids keep coming after the broker connection is lost, and so how long the successor
    of a holder that vanished waits (docs/uid.md, "Broker outages")."""
    renew_every_s: float = 0.5
    retry_every_s: float = 1.0
    max_takeover_wait_ms: int = 70_000
    """Refuse an id whose previous holder's horizon is further ahead of our clock than this."""

    def horizon_for(self, lease: Lease) -> int:
        return self.detached_horizon_ms if lease.can_be_lost_while_running else self.horizon_ms


class LeaseKeeper:
    def __init__(
        self,
        leaser: Leaser,
        datacenter_id: int,
        worker_id: int | None = None,
        *,
        policy: LeasePolicy | None = None,
        clock: Callable[[], int] = wall_ms,
        backwards_tolerance_ms: int = DEFAULT_BACKWARDS_TOLERANCE_MS,
    ) -> None:
        self.leaser = leaser
        self.datacenter_id = datacenter_id
        self.configured_worker_id = worker_id
        self.policy = policy or LeasePolicy()
        self._clock = clock
        self._tolerance = backwards_tolerance_ms
        self._lease: Lease | None = None
        self._generator: Generator | None = None
        self._task: asyncio.Task[None] | None = None
        self.renewals = 0
        self.losses = 0
        self._written: tuple[int, ...] = ()
        """The horizons this keeper wrote for its current id since it last held the lease for
        sure: finding one of them as the previous horizon proves nobody held the id since."""
        self._lost_reason: str | None = None
        self._granted_until_ms = -1
        """The horizon the generator was last given: it issues up to this, lease or not."""

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            raise RuntimeError("the lease keeper has not started")
        return self._generator

    async def start(self) -> Generator:
        lease, after_ms, until_ms = await self._take(prefer=None)
        self._lease = lease
        self._granted_until_ms = until_ms
        self._generator = Generator(
            lease.worker_id,
            self.datacenter_id,
            clock=self._clock,
            backwards_tolerance_ms=self._tolerance,
            last_timestamp_ms=after_ms,
            leased_until_ms=until_ms,
        )
        self._task = asyncio.create_task(self._keep(), name="uid-lease-keeper")
        return self._generator

    async def stop(self) -> None:
        if self._task is not None:
            # Until it is gone: a cancellation can be swallowed by library code, and a keeper
            # left running would lease again after we release.
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=1)
            self._task = None
        lease, self._lease = self._lease, None
        if self._generator is not None:
            self._generator.revoke("the uid service is stopping")
        if lease is not None:
            last = self._generator.last_timestamp_ms if self._generator else -1
            await lease.release(last)

    def status(self) -> dict[str, Any]:
        if self._generator is None:
            return {"serving": False, "datacenter_id": self.datacenter_id, "reason": "not started"}
        status = generator_status(self._generator, self._lease.where if self._lease else None)
        if self._lease is None and self._lost_reason and status["serving"]:
            status["lease_lost"] = self._lost_reason
            status["issuing_until_ms"] = until = self._granted_until_ms
            if self._clock() > until:
                status["serving"] = False
                status["reason"] = f"{self._lost_reason}; its horizon passed, leasing again"
        return status

    async def _take(self, *, prefer: int | None) -> tuple[Lease, int, int]:
        """A lease whose previous holder's horizon has passed, and ours persisted.

        Returns the lease, the millisecond ids start after (-1: where our generator is) and our
        horizon.
        """
        lease = await self.leaser.acquire(
            self.datacenter_id, self.configured_worker_id, prefer=prefer
        )
        previous = lease.previous_horizon_ms
        ours = self._still_ours(lease)
        if previous == UNKNOWN_HORIZON:
            previous = self._clock() + self.policy.horizon_for(lease)
        try:
            until = await self._enter(lease, -1 if ours else previous)
        except BaseException:
            with contextlib.suppress(Exception):
                await lease.release(previous)
            raise
        return lease, -1 if ours else previous, until

    def _still_ours(self, lease: Lease) -> bool:
        """Nobody held the id since we did: its horizon is one we wrote (a successor's would be
        later than any of ours, since it waits ours out before writing its own)."""
        same_id = self._generator is not None and lease.worker_id == self._generator.worker_id
        return same_id and lease.previous_horizon_ms in self._written

    async def _enter(self, lease: Lease, previous: int) -> int:
        ahead = previous - self._clock()
        if ahead > self.policy.max_takeover_wait_ms:
            raise LeaseUnavailable(
                f"the previous holder of worker id {lease.worker_id} may have issued ids "
                f"{ahead} ms ahead of this host's clock; is the clock wrong? Refusing to serve"
            )
        if ahead >= 0:
            # One sleep is enough: the generator itself waits out any sub-millisecond rest.
            logger.info("uid.lease.waiting_out_previous_horizon", wait_ms=ahead + 1)
            await asyncio.sleep((ahead + 1) / 1000)
        until = self._clock() + self.policy.horizon_for(lease)
        # Before the write, which may land even if it fails; a failed attempt at an id that is
        # still ours keeps the earlier horizons, any of which may be the newest.
        self._written = (*self._written, until) if self._still_ours(lease) else (until,)
        await lease.persist_horizon(until)
        return until

    async def _keep(self) -> None:
        while True:
            reason = await self._renew_until_trouble()
            self.losses += 1
            generator = self.generator
            lost, self._lease = self._lease, None
            assert lost is not None
            self._lost_reason = reason
            if not lost.can_be_lost_while_running:
                generator.revoke(reason)
            # Else no revoke: every id up to the persisted horizon is ours whatever the broker
            # does, since any next holder waits it out; the generator stops there by itself.
            logger.error(
                "uid.lease.lost",
                reason=reason,
                worker_id=generator.worker_id,
                issuing_until_ms=self._granted_until_ms if generator.serving else None,
            )
            with contextlib.suppress(Exception):
                # Records our highest horizon, never less: we may still issue up to it.
                await lost.release(max(self._written))
            await self._lease_again(prefer=generator.worker_id)

    async def _renew_until_trouble(self) -> str:
        lease = self._lease
        assert lease is not None
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that comes
        # as its timeout fires, and stop() then waits for this task forever (seen in the tests).
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.policy.renew_every_s):
                    await lease.lost.wait()
            if lease.lost.is_set():
                return f"lost the lease on {lease.where}"
            until = self._clock() + self.policy.horizon_for(lease)
            self._written += (until,)  # before the write: it may land even if we time out
            try:
                async with asyncio.timeout(self.policy.renew_every_s):
                    await lease.persist_horizon(until)
            except Exception as exc:  # any failure to persist means we may not issue further
                return f"could not renew the lease on {lease.where}: {exc!r}"
            self.generator.extend(until)
            self._granted_until_ms = until
            self._written = (until,)  # confirmed: the earlier ones can no longer be the newest
            self.renewals += 1

    async def _lease_again(self, *, prefer: int) -> None:
        while True:
            try:
                lease, after_ms, until_ms = await self._take(prefer=prefer)
            except Exception as exc:
                logger.warning("uid.lease.retry", error=str(exc))
                await asyncio.sleep(self.policy.retry_every_s)
                continue
            generator = self.generator
            if lease.worker_id != generator.worker_id:
                generator.revoke(f"moving to worker id {lease.worker_id}")
            self._lease = lease
            self._lost_reason = None
            generator.grant(until_ms, worker_id=lease.worker_id, after_ms=after_ms)
            self._granted_until_ms = until_ms
            logger.info(
                "uid.lease.resumed",
                where=lease.where,
                worker_id=lease.worker_id,
                without_gap=after_ms == -1,
            )
            return
