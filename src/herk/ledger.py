"""The job ledger: a job that is not idempotent starts on at most one herk node, even when its
request reached the broker twice (a producer retrying a publish whose confirm it lost).

Once a node has accepted such a request (its ack confirmed) and before the process starts, it
claims the job id in the broker (``Bus.claim_once``, kept ``AcceptancePolicy.claim_keep``). Every
acceptance claims with a holder of its own, ``<herk node>/<random>``: a node restarted under the
same name does not take an earlier claim for its own, and a claim whose answer was lost can be
asked for again (docs/herk.md, "Delivery semantics").
"""

from __future__ import annotations

import secrets

from megam import topology
from megam.bus import Bus


class JobLedger:
    def __init__(self, bus: Bus, node: str, keep_seconds: float) -> None:
        self._bus = bus
        self._node = node
        self._keep = keep_seconds

    def new_holder(self) -> str:
        return f"{self._node}/{secrets.token_hex(6)}"

    async def claim(self, job_id: str, holder: str) -> str | None:
        """None if the job's one run is ``holder``'s; else the holder that claimed it first."""
        return await self._bus.claim_once(topology.job_claim_key(job_id), holder, self._keep)


def holder_node(holder: str) -> str:
    """The herk node that made a claim."""
    node, separator, _ = holder.rpartition("/")
    return node if separator else holder


def duplicate_reason(first: str) -> str:
    return (
        f"duplicate: a copy of this job was accepted before by herk node {holder_node(first)} "
        f"(claim {first}); a job that is not idempotent runs at most once"
    )
