"""Starting jobs: the one path every route that starts a job takes.

A job is built with its cloud's credentials sealed for the wire (:func:`new_job`), stored with
its outbox entry (and, for a launch, its new node) in one transaction, then published at once
(:func:`submit`). What the broker does not confirm in time stays in the outbox, which publishes
it later: the answer says so (Megam's "queue servers are crowded"), and nothing is sent twice by
the client.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
from aiohttp import web

from gateway import envelope, jobs
from gateway.errors import AlreadyExists, Unavailable
from gateway.services import Services
from gateway.store import Conflict
from gateway.store.records import CloudTarget, Job, Launch, OutboxEntry
from megam.secrets import SecretError


class FurtherJob(msgspec.Struct, frozen=True, kw_only=True):
    """A job for a node that exists already (a delete)."""

    job: Job
    outbox: OutboxEntry


@contextlib.contextmanager
def readable_secrets() -> Iterator[None]:
    """Secrets the gateway sealed that it cannot open again are a 503, never a 500."""
    try:
        yield
    except SecretError as exc:
        raise Unavailable("the cloud's credentials cannot be read", more=str(exc)) from None


async def new_job(
    svc: Services,
    *,
    account_id: str,
    node_id: str,
    node_name: str,
    req_type: str,
    cloud: CloudTarget,
    run_list: list[str],
    correlation_id: str,
    now: float | None = None,
    instance_id: str = "",
) -> tuple[Job, OutboxEntry]:
    """A queued job for the node and its outbox entry, the cloud's credentials sealed in it."""
    with readable_secrets():
        sealed = jobs.sealed_credentials(svc.sealer, cloud)
    return jobs.new_job(
        job_id=await svc.new_id("RIP"),
        account_id=account_id,
        node_id=node_id,
        node_name=node_name,
        req_type=req_type,
        cloud=cloud,
        run_list=run_list,
        sealed=sealed,
        correlation_id=correlation_id,
        now=time.time() if now is None else now,
        lease=svc.options.outbox_lease_seconds,
        instance_id=instance_id,
        offered=svc.job_types,
    )


async def submit(
    svc: Services,
    work: Sequence[Launch] | FurtherJob,
    messages: list[dict[str, Any]],
    *,
    refused: str = "",
) -> web.Response:
    """Store ``work`` all or nothing (409 with ``refused`` as advice when it clashes), publish
    it, and answer 201 with ``messages`` (and Megam's crowded-queue message if it waits)."""
    if isinstance(work, FurtherJob):
        outboxes = [work.outbox]
        conflict = await _store_further(svc, work)
    else:
        outboxes = [launch.outbox for launch in work]
        conflict = await svc.launches.submit(list(work))  # concurrent launches share a commit
    if conflict is not None:
        raise AlreadyExists(str(conflict), more=refused)
    error = await svc.publisher.publish_now(outboxes)
    if error is not None:
        messages = [*messages, envelope.queue_crowded(len(outboxes), error)]
    return envelope.created(messages)


async def _store_further(svc: Services, work: FurtherJob) -> Conflict | None:
    try:
        await svc.store.add_request(work.job, work.outbox)
    except Conflict as exc:
        return exc
    return None
