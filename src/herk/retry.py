"""The retry decision and its backoff: exponential, capped, with jitter.

Only idempotent jobs are retried (the catalogue refuses a retry policy on any other). The delay
is spent holding the failed attempt's request unacknowledged, so a herk node that dies during the
backoff loses nothing: the broker redelivers the request and the attempt runs again.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from herk.catalogue import JobDefinition, RetryPolicy
from herk.outcome import Outcome


def should_retry(definition: JobDefinition, outcome: Outcome, attempt: int) -> bool:
    policy = definition.retry
    return (
        definition.idempotent
        and attempt < policy.max_attempts
        and str(outcome.state) in policy.retry_on
    )


def backoff_delay(
    policy: RetryPolicy, attempt: int, uniform: Callable[[], float] = random.random
) -> float:
    """Delay after failed ``attempt`` (1-based): half fixed, half random ("equal jitter")."""
    ceiling = min(policy.backoff_max, policy.backoff * 2 ** (attempt - 1))
    return ceiling / 2 + uniform() * ceiling / 2
