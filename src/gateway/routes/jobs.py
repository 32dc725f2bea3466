"""Cancelling a job (what Megam lacked): ``POST /v1/jobs/<id>/cancel``.

A job still in the gateway's outbox ends ``cancelled`` at once and never reaches the queue. Any
other unfinished job gets its cancel recorded in its history and a ``cancel`` command on
``megam.control`` (key ``control.all``); herk kills its process group, or refuses to start it,
and reports ``cancelled``. A job that has ended answers 409.
"""

from __future__ import annotations

import time

from aiohttp import web

from gateway import control, envelope
from gateway.errors import AlreadyExists, NotFound, Unavailable
from gateway.services import caller, services
from megam import log
from megam.bus import BusError

logger = log.get("gateway.jobs")
routes = web.RouteTableDef()


@routes.post("/v1/jobs/{job_id}/cancel")
async def cancel_job(request: web.Request) -> web.Response:
    svc = services(request)
    account = caller(request)
    job_id = request.match_info["job_id"]
    outcome = await svc.store.cancel_job(account.id, job_id, account.email, time.time())
    if outcome is None:
        raise NotFound(f"you have no job {job_id}")
    job = outcome.job
    if not outcome.ended_here and job.state not in ("queued", "running"):
        raise AlreadyExists(f"job {job_id} has already ended ({job.state})", more=job.reason)
    if outcome.ended_here:
        svc.notifier.notify(outcome.node_id, status=True)
    try:
        # also after ending it here: a publish racing this cancel may still have reached herk
        await control.send(svc.bus, control.cancel(job_id, account.email))
    except BusError as exc:
        if not outcome.ended_here:
            raise Unavailable(
                "the cancel could not reach the queue; send it again",
                more=f"{exc}; the job's history records that you asked",
            ) from None
    logger.info("job.cancel_requested", job_id=job_id, ended_here=outcome.ended_here)
    more = (
        "it had not reached the queue yet, so it never runs"
        if outcome.ended_here
        else "herk stops it (or never starts it) and reports cancelled; GET /v1/jobs/<id> shows it"
    )
    return envelope.json(
        [envelope.message(202 if not outcome.ended_here else 200, job.reason, more, job_id=job_id)],
        status=202 if not outcome.ended_here else 200,
    )
