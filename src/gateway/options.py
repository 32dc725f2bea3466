"""The gateway's own knobs, from ``MEGAM_GATEWAY_*`` variables, with defaults that need none set."""

from __future__ import annotations

import dataclasses
import os


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


@dataclasses.dataclass(frozen=True, slots=True)
class GatewayOptions:
    host: str = "127.0.0.1"
    max_body_bytes: int = 256 * 1024
    clock_skew_seconds: float | None = None
    """Refuse signatures whose X-Megam-DATE is further than this from now. Off by default,
    because Megam's own clients send local time at minute resolution (megam-original.md §9)."""
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

    @classmethod
    def from_env(cls) -> GatewayOptions:
        default = cls()
        skew = _number("MEGAM_GATEWAY_CLOCK_SKEW", 0)
        return cls(
            host=os.environ.get("MEGAM_GATEWAY_HOST") or default.host,
            max_body_bytes=int(_number("MEGAM_GATEWAY_MAX_BODY", default.max_body_bytes)),
            clock_skew_seconds=skew if skew > 0 else None,
            publish_wait_seconds=_number(
                "MEGAM_GATEWAY_PUBLISH_WAIT", default.publish_wait_seconds
            ),
            keepalive_seconds=_number("MEGAM_GATEWAY_KEEPALIVE", default.keepalive_seconds),
        )
