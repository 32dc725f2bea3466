"""Nodes: launch (Megam's full node JSON or a short form), list and show."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import msgspec
import orjson
from aiohttp import web

from gateway import bodies, envelope, jobs, submission, views
from gateway.errors import BadRequest, NotFound
from gateway.lifecycle import NodeStatus, ReqType
from gateway.node_views import CachedView
from gateway.schemas import NodeCreate, NodeLaunch
from gateway.services import Services, caller, cluster_for, request_id, services
from gateway.store.records import Account, CloudTarget, Job, Launch, Node

routes = web.RouteTableDef()


@dataclasses.dataclass(frozen=True, slots=True)
class LaunchPlan:
    names: list[str]
    node_type: str
    cloud: CloudTarget
    run_list: list[str]
    predefs: dict[str, str]
    command: dict[str, Any] | None
    """The original client's command, kept as sent; None: built from the cloud tool template."""
    defns: dict[str, Any] | None


@routes.post("/v1/nodes/content")
async def launch_nodes(request: web.Request) -> web.Response:
    svc = services(request)
    account = caller(request)
    plan = await _plan(svc, account, await bodies.json_object(request))
    launches = [await _launch(svc, account, plan, name, request_id(request)) for name in plan.names]
    messages = [
        envelope.message(
            201,
            f"node {launch.node.name} is launching",
            f"job {launch.job.id} ({launch.job.job_type}) is queued; follow it with "
            f"GET /v1/nodes/{launch.node.name}/logs/stream",
            node_name=launch.node.name,
            node_id=launch.node.id,
            job_id=launch.job.id,
        )
        for launch in launches
    ]
    refused = "a node name is in use until its node is deleted; nothing was launched"
    return await submission.submit(svc, launches, messages, refused=refused)


async def _plan(svc: Services, account: Account, raw: dict[str, Any]) -> LaunchPlan:
    if "command" in raw:
        return _plan_from_node_json(bodies.convert(raw, NodeCreate, "node (Megam's node JSON)"))
    if "predefcloud" not in raw:
        raise BadRequest(
            "a node needs predefcloud (short form) or command (Megam's node JSON)",
            more='short form: {"node_name": "web.example.com", "predefcloud": "local", '
            '"run_list": ["role[web]"]}',
        )
    body = bodies.convert(raw, NodeLaunch, "node launch (short form)")
    cloud = await svc.predef_cloud(account.id, body.predefcloud)
    if cloud is None:
        raise NotFound(
            f"you have no predef cloud named {body.predefcloud}",
            more='create it with POST /v1/predefclouds/content, e.g. {"name": '
            f'"{body.predefcloud}", "spec": {{"type_name": "local"}}}}',
        )
    return LaunchPlan(
        names=jobs.instance_names(body.node_name, body.noofinstances),
        node_type=body.node_type,
        cloud=CloudTarget(
            name=cloud.name,
            cctype=cloud.type_name,
            spec=cloud.spec,
            access=cloud.access,
            credentials_encrypted=cloud.credentials_encrypted,
            knife_rb=body.knife_rb,
        ),
        run_list=jobs.parse_run_list(body.run_list),
        predefs={},
        command=None,
        defns=None,
    )


def _plan_from_node_json(body: NodeCreate) -> LaunchPlan:
    compute = body.command.compute
    defns = {"appdefns": body.appdefns, "boltdefns": body.boltdefns}
    return LaunchPlan(
        names=jobs.instance_names(body.node_name, body.noofinstances),
        node_type=body.node_type,
        cloud=CloudTarget(
            name=compute.cctype,
            cctype=compute.cctype,
            spec=dict(compute.cc),
            access=msgspec.to_builtins(compute.access),
        ),
        run_list=jobs.parse_run_list(body.command.cloudtool.chef.run_list),
        predefs=msgspec.to_builtins(body.predefs),
        command=msgspec.to_builtins(body.command),
        defns=defns if any(defns.values()) else None,
    )


async def _launch(
    svc: Services, account: Account, plan: LaunchPlan, name: str, correlation_id: str
) -> Launch:
    now = time.time()
    node_id = await svc.new_id("NOD")
    with submission.readable_secrets():
        defns = svc.sealer.encrypt(orjson.dumps(plan.defns).decode()) if plan.defns else None
    job, outbox = await submission.new_job(
        svc,
        account_id=account.id,
        node_id=node_id,
        node_name=name,
        req_type=ReqType.CREATE.value,
        cloud=plan.cloud,
        run_list=plan.run_list,
        correlation_id=correlation_id,
        now=now,
    )
    node = Node(
        id=node_id,
        account_id=account.id,
        name=name,
        node_type=plan.node_type,
        status=NodeStatus.LAUNCHING.value,
        cloud=plan.cloud,
        command=_command_for(plan, name),
        predefs=plan.predefs,
        defns_encrypted=defns,
        created_at=now,
        updated_at=now,
    )
    return Launch(node=node, job=job, outbox=outbox)


def _command_for(plan: LaunchPlan, name: str) -> dict[str, Any]:
    if plan.command is None:
        return jobs.chef_command(plan.cloud, plan.run_list, name)
    command = orjson.loads(orjson.dumps(plan.command))
    chef = command["cloudtool"]["chef"]
    if chef.get("name"):
        chef["name"] = f"-N {name}"  # as the original: each instance's own chef node name
    return command


@routes.get("/v1/nodes")
async def list_nodes(request: web.Request) -> web.Response:
    svc = services(request)
    account = caller(request)
    nodes = await svc.store.nodes(account.id)
    by_node: dict[str, list[Job]] = {}
    for job in await svc.store.jobs(account.id):
        by_node.setdefault(job.node_id, []).append(job)
    latest = [node_jobs[-1] for node_jobs in by_node.values()]
    cluster = await cluster_for(request, latest)
    items = (views.node(node, by_node.get(node.id, []), cluster) for node in nodes)
    return envelope.json(envelope.collection("Node", items))


@routes.get("/v1/nodes/{name}")
async def show_node(request: web.Request) -> web.Response:
    svc = services(request)
    account_id = caller(request).id
    name = request.match_info["name"]
    cached = svc.node_views.get(account_id, name)
    if cached is not None and (
        cached.cluster_taken_at is None
        or cached.cluster_taken_at == (await svc.cluster.snapshot()).taken_at
    ):
        return _json_body(cached.body)
    token = svc.node_views.token()  # taken before the read: a write meanwhile voids it
    found = await svc.store.node_with_jobs(account_id, name)
    if found is None:
        raise NotFound(f"you have no node named {name}", more="GET /v1/nodes lists yours")
    node, node_jobs = found
    cluster = await cluster_for(request, node_jobs[-1:])
    body = orjson.dumps(views.node_shown(node, node_jobs, cluster))
    taken_at = cluster.taken_at if cluster is not None else None
    svc.node_views.put(account_id, name, CachedView(body, token, taken_at))
    return _json_body(body)


def _json_body(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


async def node_of_caller(request: web.Request) -> Node:
    name = request.match_info["name"]
    node = await services(request).store.node(caller(request).id, name)
    if node is None:
        raise NotFound(f"you have no node named {name}", more="GET /v1/nodes lists yours")
    return node
