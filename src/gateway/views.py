"""How stored records look in the API: Megam's field names, ISO 8601 UTC times, no secrets."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from gateway import envelope
from gateway.cluster_view import ClusterSnapshot
from gateway.store.records import (
    Account,
    HerkNode,
    HistoryEntry,
    Job,
    LogLine,
    MetricSample,
    Node,
    PredefCloud,
)
from gateway.waiting import waiting_reason


def iso(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def account(record: Account, api_key: str) -> dict[str, Any]:
    return envelope.obj(
        "Account",
        {
            "id": record.id,
            "email": record.email,
            "api_key": api_key,
            "authority": record.authority,
            "created_at": iso(record.created_at),
        },
    )


def predef_cloud(record: PredefCloud) -> dict[str, Any]:
    return envelope.obj(
        "PredefCloud",
        {
            "id": record.id,
            "name": record.name,
            "accounts_id": record.account_id,
            "spec": {"type_name": record.type_name, **record.spec},
            "access": record.access,
            "has_credentials": record.credentials_encrypted is not None,
            "ideal": "",
            "performance": "",
            "created_at": iso(record.created_at),
        },
    )


def cloud_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A seeded cloud tool with its templates nested in typed envelopes, as the original answered:
    CloudTemplateCollection → CloudTemplate → [CloudInstructionGroup] → [CloudInstructionCollection]
    → CloudInstruction (the original client's builders look templates and steps up by type)."""
    templates = envelope.collection("CloudTemplate", map(_cloud_template, tool["cloudtemplates"]))
    return envelope.obj(
        "CloudTool",
        {**tool, "cloudtemplates": templates, "created_at": iso(tool["created_at"])},
    )


def _cloud_template(template: Mapping[str, Any]) -> dict[str, Any]:
    groups = [
        envelope.obj(
            "CloudInstructionGroup",
            {
                "group": group,
                "results": [
                    envelope.collection(
                        "CloudInstruction",
                        (envelope.obj("CloudInstruction", step) for step in steps),
                    )
                ],
            },
        )
        for group, steps in template["cloud_instruction_group"].items()
    ]
    return envelope.obj(
        "CloudTemplate", {"cctype": template["cctype"], "cloud_instruction_group": groups}
    )


def node_shown(
    record: Node, jobs: list[Job], cluster: ClusterSnapshot | None = None
) -> dict[str, Any]:
    """``GET /v1/nodes/<name>``: a NodeCollection of one, as the original answered (the original
    client looks the node up in it), with the node's own fields beside ``results`` so that a
    client reading one Node (the CLI, the console) reads the same answer."""
    shown = node(record, jobs, cluster)
    return {**shown, **envelope.collection("Node", [shown])}


def node(record: Node, jobs: list[Job], cluster: ClusterSnapshot | None = None) -> dict[str, Any]:
    latest = jobs[-1] if jobs else None
    return envelope.obj(
        "Node",
        {
            "id": record.id,
            "node_name": record.name,
            "accounts_id": record.account_id,
            "node_type": record.node_type,
            "status": record.status,
            "request": _request_summary(record, latest, cluster) if latest else {},
            "predefs": record.predefs,
            "predefcloud": record.cloud.name,
            "cloud": {"name": record.cloud.name, "cctype": record.cloud.cctype},
            "appdefnsid": record.appdefnsid,
            "boltdefnsid": record.boltdefnsid,
            "created_at": iso(record.created_at),
            "updated_at": iso(record.updated_at),
        },
    )


def _request_summary(record: Node, job: Job, cluster: ClusterSnapshot | None) -> dict[str, Any]:
    return {
        "req_id": job.id,
        "req_type": job.req_type,
        # the command JSON the node was created with (the original client's DeleteNode builds
        # the delete from it); the job herk runs is job_type
        "command": record.command,
        "job_type": job.job_type,
        "state": job.state,
        "reason": job.reason,
        "waiting_reason": waiting_reason(job, cluster) if cluster else None,
    }


def request(job: Job, cluster: ClusterSnapshot | None = None) -> dict[str, Any]:
    """Megam's Request, plus what the original lacked: state, reason and history."""
    return envelope.obj(
        "Request",
        {
            "id": job.id,
            "node_id": job.node_id,
            "node_name": job.node_name,
            "req_type": job.req_type,
            "command": {"type": job.job_type, "params": job.params},
            "state": job.state,
            "reason": job.reason,
            "waiting_reason": waiting_reason(job, cluster) if cluster else None,
            "exit_code": job.exit_code,
            "attempts": job.attempt,
            "herk": job.herk,
            "published": job.published,
            "correlation_id": job.correlation_id,
            "history": [_history(entry) for entry in job.history],
            "created_at": iso(job.created_at),
            "updated_at": iso(job.updated_at),
        },
    )


def _history(entry: HistoryEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"state": entry.state, "reason": entry.reason, "at": iso(entry.at)}
    if entry.exit_code is not None:
        out["exit_code"] = entry.exit_code
    return out


def log_line(line: LogLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "job_id": line.job_id,
        "attempt": line.attempt,
        "seq": line.seq,
        "stream": line.stream,
        "text": line.text,
        "at": iso(line.at),
    }


def metric_sample(sample: MetricSample) -> dict[str, Any]:
    point = {"name": sample.name, "value": sample.value, "at": iso(sample.at), "step": sample.step}
    if sample.step:
        point |= {"low": sample.low, "high": sample.high, "count": sample.count}
    return point


def herk_node(record: HerkNode, now: float, alive: bool) -> dict[str, Any]:
    return envelope.obj(
        "HerkNode",
        {
            "name": record.name,
            "alive": alive,
            "workers": record.workers,
            "busy": record.busy,
            "inflight": list(record.inflight),
            "jobs": [
                {"job_id": h.job_id, "attempt": h.attempt, "accepted": h.accepted}
                for h in record.held
            ],
            "version": record.version,
            "uptime_seconds": max(0.0, round(record.last_seen - record.started_at, 3)),
            "draining": record.draining,
            "heartbeat_interval": record.interval,
            "last_seen": iso(record.last_seen),
            "seconds_since_seen": max(0.0, round(now - record.last_seen, 3)),
        },
    )
