"""When herk acknowledges a request: after its outcome (the default) or on acceptance.

RabbitMQ closes a consumer's channel when a delivery stays unacknowledged longer than its
``consumer_timeout`` (30 min by default; global only on 3.10), and then redelivers everything
the channel held. A job that may outlive that timeout, or that must never run twice, is therefore
acknowledged *on acceptance*, before its process starts; idempotent short jobs keep
ack-after-outcome, where redelivery is their retry (docs/herk.md, "Delivery semantics").
"""

from __future__ import annotations

import dataclasses
from typing import Final

from herk.catalogue import JobDefinition
from megam import env

CONSUMER_TIMEOUT_VARIABLE: Final = "MEGAM_BROKER_CONSUMER_TIMEOUT"
DEFAULT_CONSUMER_TIMEOUT: Final = 1800.0
"""RabbitMQ's default ``consumer_timeout`` (30 min)."""
CLAIM_KEEP_VARIABLE: Final = "MEGAM_HERK_CLAIM_KEEP"
DEFAULT_CLAIM_KEEP: Final = 86400.0
"""How long the claim of a job that is not idempotent is kept (herk/ledger.py): a copy of its
request arriving later than that would run again. A producer retries within minutes, and both
copies wait in the same queue, so a copy comes within the queue's backlog; a day covers that at
a broker memory cost a busy cluster can carry (docs/herk.md, "Cost")."""
MIN_MARGIN: Final = 60.0
STUCK_MARGIN: Final = 10.0
"""Beyond timeout + kill grace, how long a worker may take to report before it counts as stuck."""


@dataclasses.dataclass(frozen=True, slots=True)
class AcceptancePolicy:
    consumer_timeout: float = DEFAULT_CONSUMER_TIMEOUT
    claim_keep: float = DEFAULT_CLAIM_KEEP

    @classmethod
    def from_env(cls) -> AcceptancePolicy:
        return cls(
            env.seconds(CONSUMER_TIMEOUT_VARIABLE, DEFAULT_CONSUMER_TIMEOUT, positive=True),
            env.seconds(CLAIM_KEEP_VARIABLE, DEFAULT_CLAIM_KEEP, positive=True),
        )

    @property
    def safe_hold(self) -> float:
        """How long herk may hold a delivery unacknowledged: the timeout less a margin (10 %, at
        least a minute) for the wait for a worker and for clocks."""
        return self.consumer_timeout - max(MIN_MARGIN, self.consumer_timeout / 10)

    def acks_on_accept(self, definition: JobDefinition) -> bool:
        return not definition.idempotent or longest_hold(definition) >= self.safe_hold


def longest_hold(definition: JobDefinition) -> float:
    """The longest a held request of this type can stay unacknowledged: a retry's backoff (spent
    before it starts) plus the run, its kill grace and the stuck margin."""
    backoff = definition.retry.backoff_max if definition.retry.max_attempts > 1 else 0.0
    return backoff + definition.timeout + definition.kill_grace + STUCK_MARGIN
