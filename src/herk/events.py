"""What herk publishes: status, log lines and heartbeats on ``megam.events`` (EventPublisher), and
the next attempt, a request handed back or a dead letter on the request side (RequestPublisher).

Every publish is confirmed by the broker; status and log events wait for it in the outbox.
Status seq numbers are fixed per attempt: 1 for ``running``, 2 for the attempt's last word (a
terminal state, or ``queued`` when it is retried).
``started_at`` on the last word says when the attempt started, even if ``running`` was skipped.
"""

from __future__ import annotations

from typing import Final

from herk.admission import Identity
from herk.outbox import EventOutbox, Outgoing
from megam import topology, wire
from megam.bus import Bus, Delivery

RUNNING_SEQ: Final = 1
FINAL_SEQ: Final = 2


class EventPublisher:
    """Status and log events go through the node's outbox (herk.outbox): in order, and a job
    never waits for the broker; heartbeats go straight to the bus (a late one tells nothing)."""

    def __init__(self, bus: Bus, herk: str, outbox: EventOutbox) -> None:
        self._bus = bus
        self._herk = herk
        self._outbox = outbox

    async def status(
        self,
        job: Identity,
        state: wire.JobState,
        *,
        reason: str = "",
        exit_code: int | None = None,
        seq: int = FINAL_SEQ,
        started_at: float = 0.0,
    ) -> None:
        """Returns once the broker confirmed it."""
        event = wire.StatusEvent(
            job_id=job.job_id,
            node=job.node,
            account=job.account,
            type=job.type,
            state=state,
            attempt=job.attempt,
            seq=seq,
            reason=reason,
            exit_code=exit_code,
            herk=self._herk,
            correlation_id=job.correlation_id,
            at=wire.now(),
            started_at=started_at,
        )
        await self._outbox.deliver(
            Outgoing(
                topology.EVENTS.name,
                topology.status_key(job.node),
                wire.encode(event),
                message_id=f"{job.job_id}.{job.attempt}.{seq}",
                correlation_id=job.correlation_id or None,
                job_id=job.job_id,
            )
        )

    def last_logs(self, job: Identity, lines: list[wire.LogLine]) -> None:
        """An attempt's last lines, queued ahead of its outcome (the outbox keeps the order, so
        the outcome is not held back until they are confirmed, nor lost with them at a stop);
        never refused, like a status."""
        self._outbox.put(self._log_message(job, lines, droppable=False))

    def logs_soon(self, job: Identity, lines: list[wire.LogLine]) -> None:
        """From a worker thread, at once: the lines go out when the broker takes them (or are
        counted as not kept, if the outbox is full: herk.outbox)."""
        self._outbox.put(self._log_message(job, lines, droppable=True))

    def dropped_batches(self, job_id: str) -> int:
        return self._outbox.dropped(job_id)

    def _log_message(
        self, job: Identity, lines: list[wire.LogLine], *, droppable: bool
    ) -> Outgoing:
        event = wire.LogEvent(
            job_id=job.job_id, node=job.node, account=job.account, attempt=job.attempt, lines=lines
        )
        return Outgoing(
            topology.EVENTS.name,
            topology.log_key(job.job_id),
            wire.encode(event),
            message_id=f"{job.job_id}.{job.attempt}.log{lines[0].seq}",
            correlation_id=job.correlation_id or None,
            job_id=job.job_id,
            droppable=droppable,
        )

    async def heartbeat(self, beat: wire.Heartbeat) -> None:
        await self._bus.publish(
            topology.EVENTS.name, topology.heartbeat_key(beat.herk), wire.encode(beat)
        )


class RequestPublisher:
    """What herk puts back on the request side: the next attempt, a request handed back, a dead
    letter. Each waits for the broker's confirm."""

    def __init__(self, bus: Bus, herk: str) -> None:
        self._bus = bus
        self._herk = herk

    async def next_attempt(self, following: wire.JobRequest, not_before_ms: int) -> None:
        """A retry, published at once and due at ``not_before_ms`` (epoch ms)."""
        await self._bus.publish(
            topology.REQUESTS.name,
            topology.request_key(following.type),
            wire.encode(following),
            message_id=f"{following.job_id}.{following.attempt}",
            correlation_id=following.correlation_id or None,
            headers={wire.NOT_BEFORE_HEADER: not_before_ms},
        )

    async def hand_back(self, delivery: Delivery, job_type: str) -> None:
        """The request again, as a fresh message (a broker requeue would mark it redelivered)."""
        await self._bus.publish(
            topology.REQUESTS.name,
            topology.request_key(job_type),
            delivery.body,
            message_id=delivery.message_id,
            correlation_id=delivery.correlation_id,
            headers={**delivery.headers, wire.HANDED_BACK_HEADER: self._herk},
        )

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        headers = {
            key: value for key, value in delivery.headers.items() if not key.startswith("x-")
        }
        headers[wire.REASON_HEADER] = reason[:2000]
        headers[wire.HERK_HEADER] = self._herk
        await self._bus.publish(
            topology.DEAD.name,
            topology.HERK_REQUESTS.dead_letter_to or topology.HERK_REQUESTS.name,
            delivery.body,
            message_id=delivery.message_id,
            correlation_id=delivery.correlation_id,
            headers=headers,
        )
