"""Requests (Megam's ``RIP…``): the jobs of a node, with state, reason and history; deletes."""

from __future__ import annotations

from aiohttp import web

from gateway import bodies, envelope, jobs, submission, views
from gateway.errors import AlreadyExists, NotFound
from gateway.lifecycle import NodeStatus, ReqType
from gateway.schemas import RequestInput
from gateway.services import caller, cluster_for, request_id, services

routes = web.RouteTableDef()


@routes.post("/v1/requests/content")
async def create_request(request: web.Request) -> web.Response:
    svc = services(request)
    account = caller(request)
    body = await bodies.parse(request, RequestInput, "request")
    node = await svc.store.node(account.id, body.node_name)
    if node is None:
        raise NotFound(f"you have no node named {body.node_name}")
    if node.status == NodeStatus.DELETED:
        raise AlreadyExists(f"node {node.name} is already deleted")
    job, outbox = await submission.new_job(
        svc,
        account_id=account.id,
        node_id=node.id,
        node_name=node.name,
        req_type=ReqType.DELETE.value,
        cloud=node.cloud,
        run_list=[],
        correlation_id=request_id(request),
        instance_id=await jobs.created_instance_id(svc.store, node),
    )
    messages = [
        envelope.message(
            201,
            f"node {node.name} is being deleted",
            f"job {job.id} ({job.job_type}) is queued; the node turns DELETED when it succeeds",
            node_name=node.name,
            node_id=node.id,
            job_id=job.id,
        )
    ]
    return await submission.submit(svc, submission.FurtherJob(job=job, outbox=outbox), messages)


@routes.get("/v1/requests")
async def list_requests(request: web.Request) -> web.Response:
    found = await services(request).store.jobs(caller(request).id)
    cluster = await cluster_for(request, found)
    items = (views.request(job, cluster) for job in found)
    return envelope.json(envelope.collection("Request", items))


@routes.get("/v1/requests/{node_name}")
async def node_requests(request: web.Request) -> web.Response:
    svc = services(request)
    account = caller(request)
    name = request.match_info["node_name"]
    found = await svc.store.node_with_jobs(account.id, name)
    if found is None:
        raise NotFound(f"you have no node named {name}")
    cluster = await cluster_for(request, found[1])
    items = (views.request(job, cluster) for job in found[1])
    return envelope.json(envelope.collection("Request", items))


@routes.get("/v1/jobs/{job_id}")
async def show_job(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"]
    job = await services(request).store.job(caller(request).id, job_id)
    if job is None:
        raise NotFound(f"you have no job {job_id}")
    return envelope.json(views.request(job, await cluster_for(request, [job])))
