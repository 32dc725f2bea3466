"""Cluster status from herk heartbeats. In-flight job ids are shown only to their owner."""

from __future__ import annotations

import time

from aiohttp import web

from gateway import envelope, views
from gateway.services import caller, services

routes = web.RouteTableDef()


@routes.get("/v1/cluster")
async def cluster_status(request: web.Request) -> web.Response:
    svc = services(request)
    herks = await svc.store.herk_nodes()
    mine = {job.id for job in await svc.store.jobs(caller(request).id)} if herks else set()
    now = time.time()
    return envelope.json(
        envelope.collection("HerkNode", (views.herk_node(h, mine, now) for h in herks))
    )
