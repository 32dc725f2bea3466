"""Predef clouds: an account's cloud profiles. Credentials are encrypted and never shown again."""

from __future__ import annotations

import time

import orjson
from aiohttp import web

from gateway import bodies, chef_repo_settings, envelope, views
from gateway.errors import AlreadyExists, BadRequest, NotFound
from gateway.schemas import PredefCloudInput
from gateway.services import caller, services
from gateway.store import Conflict
from gateway.store.records import PredefCloud
from megam import params

routes = web.RouteTableDef()


@routes.post("/v1/predefclouds/content")
async def create_predef_cloud(request: web.Request) -> web.Response:
    svc = services(request)
    account = caller(request)
    body = await bodies.parse(request, PredefCloudInput, "predef cloud")
    spec = body.spec
    if spec.type_name != "local" and not (spec.image and spec.flavor):
        raise BadRequest(
            f"a {spec.type_name} cloud needs spec.image and spec.flavor",
            more="only a local cloud can leave them out",
        )
    repo = None
    if body.cloudtoolsetting:
        if spec.type_name == "local":
            raise BadRequest("a local cloud runs no knife: it takes no cloud tool setting")
        repo = await chef_repo_settings.setting_repo(svc, account.id, body.cloudtoolsetting)
    credentials = chef_repo_settings.cloud_credentials(body.credentials, repo)
    cloud = PredefCloud(
        id=await svc.new_id("PDC"),
        account_id=account.id,
        name=body.name,
        type_name=spec.type_name,
        # the wire's fields only: type_name is the cloud's, not part of what herk gets as spec
        spec={field: getattr(spec, field) for field in params.CloudSpec.__struct_fields__},
        access=chef_repo_settings.cloud_access(
            {field: getattr(body.access, field) for field in params.CloudAccess.__struct_fields__},
            repo,
        ),
        credentials_encrypted=(
            svc.sealer.encrypt(orjson.dumps(credentials).decode()) if credentials else None
        ),
        created_at=time.time(),
    )
    try:
        await svc.store.add_predef_cloud(cloud)
    except Conflict as exc:
        raise AlreadyExists(str(exc), more="pick another name") from None
    return envelope.created(
        [
            envelope.message(
                201,
                f"predef cloud {cloud.name} created",
                f"launch nodes on it with predefcloud: {cloud.name!r}",
                id=cloud.id,
                name=cloud.name,
            )
        ]
    )


@routes.get("/v1/predefclouds")
async def list_predef_clouds(request: web.Request) -> web.Response:
    clouds = await services(request).store.predef_clouds(caller(request).id)
    return envelope.json(envelope.collection("PredefCloud", map(views.predef_cloud, clouds)))


@routes.get("/v1/predefclouds/{name}")
async def show_predef_cloud(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    cloud = await services(request).store.predef_cloud(caller(request).id, name)
    if cloud is None:
        raise NotFound(f"you have no predef cloud named {name}")
    return envelope.json(views.predef_cloud(cloud))
