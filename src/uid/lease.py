"""A worker-id lease: while it is held, no other live generator has the same (datacenter, worker).

A lease also carries a *horizon*: the highest timestamp its holder may issue. The holder persists
the horizon before using it, and the next holder of the id starts after it, so a hand-over (a
crash, a restart, a lost connection) can never reuse a millisecond of the previous holder.
"""

from __future__ import annotations

import abc
import asyncio
from typing import ClassVar

from megam.snowflake import MAX_WORKER

UNKNOWN_HORIZON = -2
"""A previous horizon that could not be read: the keeper waits one whole horizon of its own."""


class LeaseUnavailable(RuntimeError):
    """The wanted worker id, or every worker id, is held by another live service."""


class Lease(abc.ABC):
    can_be_lost_while_running: ClassVar[bool] = False
    """True when the lease can be lost while its holder still runs (a broker connection that
    drops); then the holder keeps issuing until the horizon it persisted, and persists a longer
    one (``LeasePolicy.detached_horizon_ms``) so that an outage of the lock does not stop ids."""

    def __init__(self, datacenter_id: int, worker_id: int, previous_horizon_ms: int) -> None:
        self.datacenter_id = datacenter_id
        self.worker_id = worker_id
        self.previous_horizon_ms = previous_horizon_ms
        """The highest timestamp an earlier holder may have issued (-1: none recorded)."""
        self.lost = asyncio.Event()
        """Set when the lease is gone without :meth:`release` (e.g. the broker connection died)."""

    @property
    @abc.abstractmethod
    def where(self) -> str:
        """The lock's name, for logs and ``/healthz``."""

    @abc.abstractmethod
    async def persist_horizon(self, until_ms: int) -> None:
        """Record that this holder may issue timestamps up to ``until_ms``; raises if it cannot."""

    @abc.abstractmethod
    async def release(self, last_issued_ms: int) -> None:
        """Record the last timestamp really issued and give the id back."""


class Leaser(abc.ABC):
    kind: str

    @abc.abstractmethod
    async def acquire(
        self, datacenter_id: int, worker_id: int | None, *, prefer: int | None = None
    ) -> Lease:
        """Lease ``worker_id``, or with None the first free id (``prefer`` first, then 0..31)."""


def candidates(worker_id: int | None, prefer: int | None) -> list[int]:
    if worker_id is not None:
        return [worker_id]
    ordered = list(range(MAX_WORKER + 1))
    if prefer is not None:
        ordered.remove(prefer)
        ordered.insert(0, prefer)
    return ordered


def unavailable(kind: str, datacenter_id: int, worker_id: int | None) -> LeaseUnavailable:
    if worker_id is not None:
        return LeaseUnavailable(
            f"worker id {worker_id} of datacenter {datacenter_id} is already leased by another "
            f"running uid service ({kind} lease); two generators with one worker id would issue "
            "duplicate ids, so this one will not serve. Stop the other one or pick another "
            "--worker-id."
        )
    return LeaseUnavailable(
        f"all {MAX_WORKER + 1} worker ids of datacenter {datacenter_id} are leased by running "
        f"uid services ({kind} lease); use another --datacenter-id"
    )
