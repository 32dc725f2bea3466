"""What herk tells the rest of the system, on ``megam.events``: status, log lines and heartbeats.

Every publish waits for the broker's confirm. Status seq numbers are fixed per attempt: 1 for
``running``, 2 for the attempt's last word (a terminal state, or ``queued`` when it is retried).
``started_at`` on the last word says when the attempt started, even if ``running`` was skipped.
"""

from __future__ import annotations

from typing import Final

from herk.admission import Identity
from megam import topology, wire
from megam.bus import Bus

RUNNING_SEQ: Final = 1
FINAL_SEQ: Final = 2


class EventPublisher:
    def __init__(self, bus: Bus, herk: str) -> None:
        self._bus = bus
        self._herk = herk

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
        await self._bus.publish(
            topology.EVENTS.name,
            topology.status_key(job.node),
            wire.encode(event),
            message_id=f"{job.job_id}.{job.attempt}.{seq}",
            correlation_id=job.correlation_id or None,
        )

    async def logs(self, job: Identity, lines: list[wire.LogLine]) -> None:
        event = wire.LogEvent(
            job_id=job.job_id, node=job.node, account=job.account, attempt=job.attempt, lines=lines
        )
        await self._bus.publish(
            topology.EVENTS.name,
            topology.log_key(job.job_id),
            wire.encode(event),
            message_id=f"{job.job_id}.{job.attempt}.log{lines[0].seq}",
            correlation_id=job.correlation_id or None,
        )

    async def heartbeat(self, beat: wire.Heartbeat) -> None:
        await self._bus.publish(
            topology.EVENTS.name, topology.heartbeat_key(beat.herk), wire.encode(beat)
        )
