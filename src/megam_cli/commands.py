"""The client commands: clouds, nodes, logs, search, jobs, cluster. Each talks to the gateway."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from megam.wire import JobState
from megam_cli import units
from megam_cli.client import ApiClient
from megam_cli.output import HUMAN, Output

TERMINAL_STATES = frozenset(state.value for state in JobState if state.terminal)


def read_credentials_file(path: Path) -> dict[str, str]:
    """``key = value`` lines, as in the original's vault ``type`` files; # comments allowed."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}:{number}: expected 'key = value'")
        values[key.strip()] = value.strip()
    return values


async def clouds_add(
    api: ApiClient,
    name: str,
    provider: str,
    options: Mapping[str, Any],
    credentials_file: Path | None,
    out: Output = HUMAN,
) -> int:
    secrets: dict[str, str] = {}
    if credentials_file is not None:
        secrets = read_credentials_file(credentials_file)
    elif provider == "ec2" and os.environ.get("AWS_ACCESS_KEY_ID"):
        secrets = {
            "aws_access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
        }
    spec = {
        "type_name": provider,
        "groups": options.get("group") or "",
        "image": options.get("image") or "",
        "flavor": options.get("flavor") or "",
        "tenant_id": options.get("tenant_id") or "",
    }
    access = {
        "ssh_key": options.get("ssh_key") or "",
        "identity_file": options.get("identity_file") or "",
        "ssh_user": options.get("ssh_user") or "",
        "vault_location": "",
        "sshpub_location": "",
        "zone": options.get("zone") or "",
        "region": options.get("region") or "",
    }
    body: dict[str, Any] = {"name": name, "spec": spec, "access": access}
    if secrets:
        body["credentials"] = secrets
    reply = await api.post("/v1/predefclouds/content", body)
    out.say(
        f"cloud {name} ({provider}) saved"
        + (f" with {len(secrets)} sealed credentials" if secrets else "")
    )
    out.data(reply)
    return 0


async def clouds_list(api: ApiClient, out: Output = HUMAN) -> int:
    reply = await api.get("/v1/predefclouds")
    rows = [
        {
            "name": c["name"],
            "provider": c["spec"]["type_name"],
            "image": c["spec"].get("image", ""),
            "region": c["access"].get("region", ""),
        }
        for c in reply["results"]
    ]
    out.table(rows, ["name", "provider", "image", "region"], data=reply["results"])
    return 0


async def nodes_launch(
    api: ApiClient,
    name: str,
    cloud: str,
    run_list: list[str],
    count: int | None,
    follow: bool,
    out: Output = HUMAN,
) -> int:
    """Launch ``name`` as given, or with ``count`` Megam's fan-out (web → web1 … webN)."""
    body: dict[str, Any] = {"node_name": name, "predefcloud": cloud, "run_list": run_list}
    if count is not None:
        body["noofinstances"] = count  # absent, the gateway keeps the name exactly
    reply = await api.post("/v1/nodes/content", body)
    launched = launched_nodes(reply)
    for node, job in launched:
        out.say(f"launching {node} as job {job}")
    for message in messages(reply):
        if "job_id" not in message:
            out.say(str(message.get("msg", message)))
    started = [{"node_name": node, "job_id": job} for node, job in launched]
    if not follow:
        out.data(started)
        return 0
    if out.json:  # a stream follows: one JSON object per line throughout
        for item in started:
            out.line(item)
    ok = True
    for node, _ in launched:
        ok = await follow_node(api, node, until_done=True, out=out) and ok
    return 0 if ok else 1


def messages(reply: Any) -> list[dict[str, Any]]:
    """Megam answers a create with a list of messages (or, for some, one object)."""
    items = reply if isinstance(reply, list) else [reply]
    return [item for item in items if isinstance(item, dict)]


def launched_nodes(reply: Any) -> list[tuple[str, str]]:
    """(node name, job id) for every node the gateway said it is launching."""
    return [
        (message["node_name"], message["job_id"])
        for message in messages(reply)
        if "node_name" in message and "job_id" in message
    ]


async def follow_node(
    api: ApiClient, node: str, *, until_done: bool, tail: int = 100, out: Output = HUMAN
) -> bool:
    """Print a node's log lines as they come; with ``until_done``, stop when its latest job ends.

    Returns True when the node ends up RUNNING (or, for a delete, DELETED). With ``--json``
    every line, and then the node's final status, is one JSON object per line.
    """
    prefix = f"[{node}] "
    async for event in api.follow(f"/v1/nodes/{node}/logs/stream", tail=tail):
        if event.event == "message":
            line = event.data
            if out.json:
                out.line({"node_name": node, **line})
                continue
            stream = sys.stderr if line.get("stream") == "stderr" else sys.stdout
            stream.write(prefix + line["text"] + "\n")
            stream.flush()
        elif event.event == "status" and until_done and _all_jobs_ended(event.data):
            break
    shown = await api.get(f"/v1/nodes/{node}")
    status = shown.get("status", "?")
    job = await _latest_job(api, node)
    reason = f" ({job.get('state')}: {job.get('reason')})" if job and job.get("reason") else ""
    if out.json:
        out.line({"node_name": node, "status": status, "job": job})
    else:
        print(f"{node}: {status}{reason}", flush=True)
    return status in ("RUNNING", "DELETED")


def _all_jobs_ended(status: Mapping[str, Any]) -> bool:
    """A node status event lists the node's jobs; following ends when none is still going."""
    jobs = status.get("jobs") or []
    return bool(jobs) and all(job.get("state") in TERMINAL_STATES for job in jobs)


async def _latest_job(api: ApiClient, node: str) -> dict[str, Any] | None:
    reply = await api.get(f"/v1/requests/{node}")
    results = reply.get("results", [])
    return max(results, key=lambda r: r.get("created_at", 0)) if results else None


async def nodes_list(api: ApiClient, out: Output = HUMAN) -> int:
    reply = await api.get("/v1/nodes")
    rows = [
        {
            "name": n["node_name"],
            "status": n["status"],
            "id": n["id"],
            "cloud": n.get("predefcloud", ""),
            "created": n.get("created_at", ""),
        }
        for n in reply["results"]
    ]
    out.table(rows, ["name", "status", "cloud", "id", "created"], data=reply["results"])
    return 0


async def nodes_show(api: ApiClient, name: str, out: Output = HUMAN) -> int:
    node = await api.get(f"/v1/nodes/{name}")
    jobs = (await api.get(f"/v1/requests/{name}")).get("results", [])
    if out.json:
        out.data({**node, "jobs": jobs})
        return 0
    out.fields(node, ["node_name", "id", "status", "predefcloud", "created_at"])
    if jobs:
        print()
        out.table(
            [
                {
                    "job": j["id"],
                    "type": j.get("req_type", j.get("type", "")),
                    "state": j.get("state", ""),
                    "reason": j.get("reason", ""),
                }
                for j in jobs
            ],
            ["job", "type", "state", "reason"],
        )
    return 0


async def nodes_delete(api: ApiClient, name: str, follow: bool, out: Output = HUMAN) -> int:
    reply = await api.post("/v1/requests/content", {"node_name": name, "req_type": "delete"})
    jobs = [m["job_id"] for m in messages(reply) if "job_id" in m]
    for message in messages(reply):
        out.say(str(message.get("msg", message)) + (f" (job {message['job_id']})"
                if "job_id" in message else ""))
    out.data([{"node_name": name, "job_id": job} for job in jobs])
    if follow:
        ok = await follow_node(api, name, until_done=True, tail=0, out=out)
        return 0 if ok else 1
    return 0


async def logs(api: ApiClient, node: str, follow: bool, tail: int, out: Output = HUMAN) -> int:
    if follow:
        await follow_node(api, node, until_done=False, tail=tail, out=out)
        return 0
    reply = await api.get(f"/v1/nodes/{node}/logs", tail=tail)
    if out.json:
        out.data(reply["results"])
        return 0
    for line in reply["results"]:
        print(line["text"])
    return 0


async def search(
    api: ApiClient,
    words: list[str],
    node: str | None,
    job: str | None,
    state: str | None,
    limit: int,
    out: Output = HUMAN,
) -> int:
    reply = await api.get(
        "/v1/logs/search", q=" ".join(words), node=node, job=job, state=state, limit=limit
    )
    rows = [
        {
            "at": hit["at"],
            "node": hit["node_name"],
            "job": hit["job_id"],
            "state": hit.get("job_state", ""),
            "text": hit["text"],
        }
        for hit in reply["results"]
    ]
    out.table(rows, ["at", "node", "job", "state", "text"], data=reply["results"])
    return 0


async def jobs_show(api: ApiClient, job_id: str, out: Output = HUMAN) -> int:
    job = await api.get(f"/v1/jobs/{job_id}")
    if out.json:
        out.data(job)
        return 0
    out.fields(
        job,
        ["id", "node_name", "req_type", "state", "reason", "exit_code", "attempt", "herk",
         "created_at"],
    )
    history = job.get("history") or []
    if history:
        print()
        out.table(history, ["at", "state", "reason"])
    return 0


async def jobs_cancel(api: ApiClient, job_id: str, out: Output = HUMAN) -> int:
    reply = await api.post(f"/v1/jobs/{job_id}/cancel", {})
    for message in messages(reply):
        out.say(str(message.get("msg", message)))
    out.data(reply)
    return 0


async def cluster_status(api: ApiClient, out: Output = HUMAN) -> int:
    reply = await api.get("/v1/cluster")
    if out.json:
        out.data(reply)
        return 0
    rows = [
        {
            "herk": h["name"],
            "alive": "yes" if h["alive"] else "NO",
            "workers": h["workers"],
            "busy": h["busy"],
            "inflight": len(h.get("inflight", [])),
            "draining": "yes" if h.get("draining") else "",
            "version": h.get("version", ""),
            "uptime": f"{h.get('uptime_seconds', 0):.0f}s",
            "last_seen": f"{h.get('seconds_since_seen', 0):.0f}s ago",
        }
        for h in reply["results"]
    ]
    columns = ["herk", "alive", "workers", "busy", "inflight", "draining", "version", "uptime",
               "last_seen"]
    out.table(rows, columns)
    print(
        f"\nqueue depth {reply.get('queue_depth', '?')} · dead letters "
        f"{reply.get('dead_letters', '?')} · herk nodes alive {reply.get('alive', '?')}"
    )
    return 0


async def cluster_drain(api: ApiClient, herk: str, out: Output = HUMAN) -> int:
    reply = await api.post(f"/v1/cluster/{herk}/drain", {})
    out.say(f"asked {herk} to drain: it takes no new jobs and finishes or hands back the rest")
    out.data(reply)
    return 0


async def cluster_scale(api: ApiClient, herk: str, workers: int, out: Output = HUMAN) -> int:
    reply = await api.post(f"/v1/cluster/{herk}/scale", {"workers": workers})
    out.say(f"asked {herk} to run {workers} workers")
    out.data(reply)
    return 0


async def dead_letters(
    api: ApiClient, action: str, ids: list[str], limit: int, out: Output = HUMAN
) -> int:
    if action == "list":
        reply = await api.get("/v1/cluster/deadletters", limit=limit)
        out.table(
            [
                {
                    "id": d["id"],
                    "type": d.get("type", ""),
                    "node": d.get("node", ""),
                    "reason": d["reason"],
                }
                for d in reply["results"]
            ],
            ["id", "type", "node", "reason"],
            data=reply["results"],
        )
        return 0
    body: dict[str, Any] = {"ids": ids} if ids else {"all": True}
    reply = await api.post(f"/v1/cluster/deadletters/{action}", body)
    for message in messages(reply):
        out.say(str(message.get("msg", message)))
    out.data(reply)
    return 0


async def node_metrics(api: ApiClient, node: str, out: Output = HUMAN) -> int:
    """The latest value of each metric the node reported, with its unit and whose it is."""
    reply = await api.get(f"/v1/nodes/{node}/metrics")
    latest: dict[str, dict[str, Any]] = {}
    for sample in reply["results"]:
        if sample["name"] not in latest or sample["at"] >= latest[sample["name"]]["at"]:
            latest[sample["name"]] = sample
    rows = [
        {
            "metric": name,
            "value": units.with_unit(name, s["value"]),
            "of": units.scope(name),
            "at": s["at"],
        }
        for name, s in sorted(latest.items())
    ]
    out.table(rows, ["metric", "value", "of", "at"], data=[latest[k] for k in sorted(latest)])
    return 0
