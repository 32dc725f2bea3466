"""The gateway's own knobs, from ``MEGAM_GATEWAY_*`` variables, with defaults that need none set."""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Final

from gateway.store.records import Retention
from megam import env
from megam.bus.amqp import HEARTBEAT_SECONDS


@dataclasses.dataclass(frozen=True, slots=True)
class GatewayOptions:
    host: str = "127.0.0.1"
    max_body_bytes: int = 256 * 1024
    clock_skew_seconds: float | None = 15 * 60
    """Refuse signatures whose X-Megam-DATE is further than this from now, so that an overheard
    request cannot be replayed later (MEGAM_GATEWAY_CLOCK_SKEW_MINUTES; 0 turns the check off).
    Minutes, because Megam's clients sign the date at minute resolution (docs/original.md §9)."""
    client_utc_offsets: tuple[float, ...] = ()
    """Zones (seconds east of UTC) whose local time is also accepted as X-Megam-DATE, for the
    2014 client, which signs its machine's local time (MEGAM_GATEWAY_CLIENT_UTC_OFFSETS, e.g.
    ``+05:30,-08:00``). Each zone named widens nothing else: the window stays the same."""
    header_timeout_seconds: float = 20.0
    """A connection must send a request's headers within this long of opening (or of the previous
    answer) or it is closed (MEGAM_GATEWAY_HEADER_TIMEOUT); more than aiohttp clients' 15 s
    keep-alive, so a client never reuses a connection the gateway is closing."""
    body_timeout_seconds: float = 30.0
    """A request body must arrive within this long, or the answer is 408
    (MEGAM_GATEWAY_BODY_TIMEOUT)."""
    publish_wait_seconds: float = 2.0
    """How long an HTTP request waits for RabbitMQ before answering "queue servers crowded"."""
    outbox_interval_seconds: float = 1.0
    outbox_lease_seconds: float = 30.0
    outbox_max_backoff_seconds: float = 30.0
    tail_default: int = 100
    tail_max: int = 10_000
    page_max: int = 5_000
    keepalive_seconds: float = 15.0
    event_prefetch: int = 200
    admin_emails: frozenset[str] = frozenset()
    """Accounts that may run the cluster (``/v1/cluster…``, dead letters): MEGAM_ADMIN_EMAILS,
    comma-separated. Onboarding is open, so authority is never taken from a request body."""
    herk_silence_beats: float = 3.0
    """A herk node that missed this many of its heartbeat intervals is unreachable: its running
    jobs say so (``herk_node_unreachable``), nothing ends yet. It is presumed gone (its accepted
    jobs end ``interrupted``, presumed) once it missed as many …"""
    herk_silence_min_seconds: float = 2.0 * HEARTBEAT_SECONDS
    """… and stayed silent at least this long (MEGAM_GATEWAY_HERK_SILENCE): twice the AMQP
    heartbeat timeout herk's connection uses. A cut connection is found dead within one timeout
    and herk reconnects and beats within the next, so a node the bus merely lost for a moment is
    never presumed gone."""
    reconcile_interval_seconds: float = 2.0
    """How often the reconciler looks for jobs no herk node holds any more."""
    log_retention_days: float = 30.0
    """Log lines older than this are dropped (MEGAM_GATEWAY_LOG_RETENTION_DAYS) …"""
    job_retention_days: float = 365.0
    """… and jobs finished longer ago than this, with their lines and history
    (MEGAM_GATEWAY_JOB_RETENTION_DAYS). Nodes and unfinished jobs are kept."""
    metric_retention_days: tuple[float, float, float] = (2.0, 35.0, 400.0)
    """How long metrics are kept as raw samples, as 5-minute points and as hourly points
    (MEGAM_GATEWAY_METRIC_RETENTION_DAYS, e.g. ``2,35,400``)."""
    purge_interval_seconds: float = 3600.0
    rollup_interval_seconds: float = 60.0
    """How often new metric samples are folded into 5-minute and hourly points
    (MEGAM_GATEWAY_ROLLUP_INTERVAL)."""

    @property
    def retention(self) -> Retention:
        raw, five_minutes, hours = (days * 86400 for days in self.metric_retention_days)
        return Retention(
            log_seconds=self.log_retention_days * 86400,
            job_seconds=self.job_retention_days * 86400,
            metric_seconds=(raw, five_minutes, hours),
        )

    @classmethod
    def from_env(cls) -> GatewayOptions:
        default = cls()
        skew_minutes = env.number(
            "MEGAM_GATEWAY_CLOCK_SKEW_MINUTES", (default.clock_skew_seconds or 0) / 60
        )
        return cls(
            host=os.environ.get("MEGAM_GATEWAY_HOST") or default.host,
            max_body_bytes=int(env.number("MEGAM_GATEWAY_MAX_BODY", default.max_body_bytes)),
            clock_skew_seconds=skew_minutes * 60 if skew_minutes > 0 else None,
            client_utc_offsets=_utc_offsets(os.environ.get("MEGAM_GATEWAY_CLIENT_UTC_OFFSETS", "")),
            header_timeout_seconds=env.number(
                "MEGAM_GATEWAY_HEADER_TIMEOUT", default.header_timeout_seconds
            ),
            body_timeout_seconds=env.number(
                "MEGAM_GATEWAY_BODY_TIMEOUT", default.body_timeout_seconds
            ),
            publish_wait_seconds=env.number(
                "MEGAM_GATEWAY_PUBLISH_WAIT", default.publish_wait_seconds
            ),
            keepalive_seconds=env.number("MEGAM_GATEWAY_KEEPALIVE", default.keepalive_seconds),
            admin_emails=_emails(os.environ.get("MEGAM_ADMIN_EMAILS", "")),
            herk_silence_min_seconds=env.number(
                "MEGAM_GATEWAY_HERK_SILENCE", default.herk_silence_min_seconds
            ),
            log_retention_days=env.number(
                "MEGAM_GATEWAY_LOG_RETENTION_DAYS", default.log_retention_days
            ),
            job_retention_days=env.number(
                "MEGAM_GATEWAY_JOB_RETENTION_DAYS", default.job_retention_days
            ),
            rollup_interval_seconds=env.number(
                "MEGAM_GATEWAY_ROLLUP_INTERVAL", default.rollup_interval_seconds
            ),
            metric_retention_days=_metric_days(
                os.environ.get("MEGAM_GATEWAY_METRIC_RETENTION_DAYS", ""),
                default.metric_retention_days,
            ),
        )


def _metric_days(raw: str, default: tuple[float, float, float]) -> tuple[float, float, float]:
    if raw == "":
        return default
    problem = (
        "MEGAM_GATEWAY_METRIC_RETENTION_DAYS must be three growing numbers of days "
        f"(raw samples, 5-minute points, hourly points), e.g. 2,35,400; got {raw!r}"
    )
    try:
        raw_days, five_minutes, hours = (float(part) for part in raw.split(","))
    except ValueError:
        raise ValueError(problem) from None
    if not 0 < raw_days <= five_minutes <= hours:
        raise ValueError(problem)
    return raw_days, five_minutes, hours


_UTC_OFFSET: Final = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def _utc_offsets(raw: str) -> tuple[float, ...]:
    offsets = []
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        match = _UTC_OFFSET.fullmatch(part)
        if match is None or int(match[2]) > 14 or int(match[3]) >= 60:
            raise ValueError(
                "MEGAM_GATEWAY_CLIENT_UTC_OFFSETS must be UTC offsets like +05:30,-08:00; "
                f"got {part!r}"
            )
        sign = -1 if match[1] == "-" else 1
        offsets.append(sign * (int(match[2]) * 3600 + int(match[3]) * 60))
    return tuple(offsets)


def _emails(raw: str) -> frozenset[str]:
    return frozenset(email.strip().lower() for email in raw.split(",") if email.strip())
