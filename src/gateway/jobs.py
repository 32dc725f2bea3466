"""Turning a node request into a job: its type, its parameters, and the ``wire.JobRequest``.

Which job type a request runs is the gateway's rule (the contract with herk, :mod:`megam.params`):

* ``local.create`` ``{"run_list": [...]}`` and ``local.delete`` ``{}`` for ``local`` clouds;
* ``knife.create`` ``{"cloud": {"cctype", "spec", "access"}, "run_list": [...], "knife_rb"?,
  "chef_repo"?}`` and ``knife.delete`` ``{"cloud": {...}, "knife_rb"?, "chef_repo"?,
  "instance_id"?}`` for the others (``chef_repo``: the cloud tool setting's git repo).

Whether herk offers that type, and the params schema it takes, come from the job catalogue
(``actors/<type>.toml``, read through :mod:`megam.job_types`), the files herk runs jobs from.
Params are checked against that schema before they are stored or published: herk would refuse
them to its dead-letter queue, so the caller hears of it now, as a 400. Cloud credentials travel
only in ``JobRequest.sealed``.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from gateway import catalogue, chef_repo_settings, lifecycle
from gateway.errors import BadRequest, Unavailable
from gateway.store import Store
from gateway.store.records import CloudTarget, HistoryEntry, Job, Node, OutboxEntry
from megam import job_types, topology, wire
from megam.job_types import JobTypeError, JobTypes
from megam.params import (
    ARG_VALUE_RULE,
    DELETES_BY_ID,
    RUN_LIST_ITEM,
    ParamsError,
    check,
    recorded_instance_id,
)
from megam.secrets import Sealer
from megam.wire import JobState


def instance_names(name: str, count: int | None) -> list[str]:
    """Megam's fan-out: ``web.megam.co`` with 2 instances → ``web1.megam.co``, ``web2.megam.co``."""
    if count is None:
        return [name]
    label, dot, rest = name.partition(".")
    names = [f"{label}{i}{dot}{rest}" for i in range(1, count + 1)]
    for candidate in names:
        try:
            msgspec.convert(candidate, wire.NodeName)
        except msgspec.ValidationError:
            raise BadRequest(
                f"instance name {candidate} is not a valid node name",
                more="the first label of a node name can have at most 63 characters, "
                "including the instance number",
            ) from None
    return names


def parse_run_list(value: list[str] | str) -> list[str]:
    """A run list from a list, or from Megam's string form ``'role[a]', recipe[b]``."""
    if isinstance(value, list):
        return value
    items = [item.strip().strip("'\"").strip() for item in value.split(",")]
    items = [item for item in items if item]
    bad = [item for item in items if not RUN_LIST_ITEM.fullmatch(item)]
    if bad:
        raise BadRequest(
            f"run list entry {bad[0]!r} is not a Chef run-list entry",
            more="use role[name] or recipe[cookbook::recipe], separated by commas",
        )
    return items


def chef_command(cloud: CloudTarget, run_list: list[str], node_name: str) -> dict[str, Any]:
    """The original's ``command`` object, built from the cloud and the cloud tool template."""
    if cloud.cctype == "local":
        chef = {"command": "chef-client", "plugin": "--local-mode", "name": ""}
    else:
        create, name_flag = catalogue.create_template(cloud.cctype)
        chef = {
            "command": "knife",
            "plugin": f"{cloud.cctype} {create}",
            "name": f"{name_flag} {node_name}" if name_flag else "",
        }
    return {
        "systemprovider": {"provider": {"prov": "chef"}},
        "compute": {"cctype": cloud.cctype, "cc": cloud.spec, "access": cloud.access},
        "cloudtool": {"chef": {**chef, "run_list": ",".join(f"'{r}'" for r in run_list)}},
    }


def job_spec(
    cloud: CloudTarget,
    req_type: str,
    run_list: list[str],
    offered: JobTypes | None = None,
    *,
    instance_id: str = "",
) -> tuple[str, dict[str, Any]]:
    """The job type and its params; :class:`BadRequest` when herk would refuse the params,
    :class:`Unavailable` when the job catalogue (``offered``, else the bundled one) lacks it.
    ``instance_id``: for a knife delete, the id the node's create printed (knife deletes by id)."""
    refusal = catalogue.launch_refusal(cloud.cctype)
    if refusal is not None:
        raise BadRequest(*refusal)
    if cloud.cctype == "local":
        job_type = f"local.{req_type}"
        params: dict[str, Any] = {"run_list": run_list} if req_type == "create" else {}
    else:
        job_type = f"knife.{req_type}"
        access, chef_repo = chef_repo_settings.knife_params_repo(cloud.access)
        params = {"cloud": {"cctype": cloud.cctype, "spec": cloud.spec, "access": access}}
        if chef_repo is not None:
            params["chef_repo"] = chef_repo
        if req_type == "create":
            params["run_list"] = run_list
        elif instance_id:
            params["instance_id"] = instance_id
        if cloud.knife_rb:
            params["knife_rb"] = cloud.knife_rb
    try:
        kind = (offered or job_types.bundled()).params_schema(job_type)
    except JobTypeError as exc:
        raise Unavailable(f"herk runs no {job_type} jobs here", more=str(exc)) from None
    try:
        check(kind, params, job_type)
    except ParamsError as exc:
        raise BadRequest(
            str(exc),
            more=f"herk would refuse this job; cloud {cloud.name}'s spec and access values "
            f"become knife arguments: {ARG_VALUE_RULE}",
        ) from None
    # what was checked is published, not the typed form: that would add every default field
    return job_type, params


def sealed_credentials(sealer: Sealer, cloud: CloudTarget) -> str | None:
    """Re-seal the cloud's at-rest credentials for the wire; None when it has none."""
    if cloud.credentials_encrypted is None:
        return None
    return sealer.seal(orjson.loads(sealer.decrypt(cloud.credentials_encrypted)))


def new_job(
    *,
    job_id: str,
    account_id: str,
    node_id: str,
    node_name: str,
    req_type: str,
    cloud: CloudTarget,
    run_list: list[str],
    sealed: str | None,
    correlation_id: str,
    now: float,
    lease: float,
    instance_id: str = "",
    offered: JobTypes | None = None,
) -> tuple[Job, OutboxEntry]:
    """The stored job and its outbox entry (the encoded ``JobRequest``), queued and unpublished;
    its type must be one the job catalogue ``offered`` (else the bundled one) has."""
    job_type, params = job_spec(cloud, req_type, run_list, offered, instance_id=instance_id)
    message = wire.JobRequest(
        job_id=job_id,
        type=job_type,
        node=node_name,
        account=account_id,
        correlation_id=correlation_id,
        params=params,
        sealed=sealed,
        created_at=now,
    )
    reason = lifecycle.QUEUED_REASON
    job = Job(
        id=job_id,
        account_id=account_id,
        node_id=node_id,
        node_name=node_name,
        req_type=req_type,
        job_type=job_type,
        params=params,
        state=JobState.QUEUED.value,
        reason=reason,
        exit_code=None,
        attempt=0,  # herk's first status event (attempt 1) is newer than anything stored here
        seq=0,
        herk="",
        correlation_id=correlation_id,
        published=False,
        created_at=now,
        updated_at=now,
        history=(HistoryEntry(state=JobState.QUEUED.value, reason=reason, at=now),),
    )
    outbox = OutboxEntry(
        job_id=job_id,
        routing_key=topology.request_key(job_type),
        body=wire.encode(message),
        correlation_id=correlation_id,
        attempts=0,
        # the request publishes it at once; the outbox loop only takes over if that fails
        due_at=now + lease,
    )
    return job, outbox


async def created_instance_id(store: Store, node: Node) -> str:
    """The cloud's id of the server the node's last create made, from that job's log (``Instance
    ID: …``, which knife-ec2 prints as soon as the server exists, and again at the end). A
    create that failed later (in the bootstrap, say) counts: its server exists and bills. ""
    when it is not known (a local node, a cloud that deletes by name, a create that made no
    server, a log already purged)."""
    if node.cloud.cctype not in DELETES_BY_ID:
        return ""
    found = await store.node_with_jobs(node.account_id, node.name)
    creates = [job for job in (found[1] if found else []) if job.req_type == "create"]
    if not creates:
        return ""
    job = max(creates, key=lambda j: j.created_at)
    for window in ({"after": 0, "limit": 200}, {"tail": 200}):
        lines = await store.log_lines(node.account_id, node.id, job_id=job.id, **window)
        instance_id = recorded_instance_id((line.text for line in lines), node.cloud.cctype)
        if instance_id:
            return instance_id
    return ""
