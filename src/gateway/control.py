"""Steering herk through ``megam.control``: cancel a job, drain or scale a herk node.

A cancel goes to ``control.all``, which herk's ``herk.cancels`` stream keeps for a week: every herk
node reads it, also one that starts later, so a cancelled job that is still queued never starts.
"""

from __future__ import annotations

from megam import topology, wire
from megam.bus import Bus


async def send(bus: Bus, command: wire.ControlCommand, herk: str | None = None) -> None:
    """Publish ``command`` to ``herk`` (or every node); raises the bus's error if it cannot."""
    await bus.publish(
        topology.CONTROL.name,
        topology.control_key(herk),
        wire.encode(command),
        message_id=f"{command.command}.{command.job_id or herk or 'all'}.{command.at}",
    )


def cancel(job_id: str, requested_by: str) -> wire.ControlCommand:
    return wire.ControlCommand(
        command="cancel", job_id=job_id, requested_by=requested_by, at=wire.now()
    )


def drain(requested_by: str) -> wire.ControlCommand:
    return wire.ControlCommand(command="drain", requested_by=requested_by, at=wire.now())


def scale(workers: int, requested_by: str) -> wire.ControlCommand:
    return wire.ControlCommand(
        command="scale", workers=workers, requested_by=requested_by, at=wire.now()
    )
