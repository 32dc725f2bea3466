"""An account's cloud tool settings (which chef-repo and knife.rb) and ssh keys. A private key
is encrypted at rest and never shown again; ``has_private_key`` says whether one is kept."""

from __future__ import annotations

from aiohttp import web

from gateway import bodies, chef_repo_settings, documents, envelope
from gateway.errors import AlreadyExists, NotFound
from gateway.schemas import CloudToolSettingInput, SshKeyInput
from gateway.services import caller, services
from gateway.store import Conflict
from gateway.store.records import Document

routes = web.RouteTableDef()


@routes.post("/v1/cloudtoolsettings/content")
async def create_cloudtoolsetting(request: web.Request) -> web.Response:
    svc = services(request)
    account = caller(request)
    body = await bodies.parse(request, CloudToolSettingInput, "cloud tool setting")
    chef_repo_settings.check_setting(body.repo, body.ref, body.deploy_key)
    fields = {f: getattr(body, f) for f in body.__struct_fields__ if f != "deploy_key"}
    document = await documents.new(
        svc, "cloudtoolsetting", account.id, fields, secret=body.deploy_key
    )
    await _add(request, document)
    return envelope.created(
        documents.created(document, f"cloud tool setting {body.repo_name} created", document.id)
    )


@routes.get("/v1/cloudtoolsettings")
async def list_cloudtoolsettings(request: web.Request) -> web.Response:
    found = await services(request).store.documents(caller(request).id, "cloudtoolsetting")
    return envelope.json(documents.collection("cloudtoolsetting", found))


@routes.get("/v1/cloudtoolsettings/{id}")
async def show_cloudtoolsetting(request: web.Request) -> web.Response:
    return envelope.json(documents.view(await _one(request, "cloudtoolsetting", "id")))


@routes.post("/v1/sshkeys/content")
async def create_sshkey(request: web.Request) -> web.Response:
    svc = services(request)
    account = caller(request)
    body = await bodies.parse(request, SshKeyInput, "ssh key")
    fields = {"name": body.name, "path": body.path, "public_key": body.public_key}
    document = await documents.new(
        svc, "sshkey", account.id, fields, name=body.name, secret=body.private_key
    )
    await _add(request, document)
    return envelope.created(
        documents.created(
            document, f"ssh key {body.name} created", "the private key is kept encrypted"
        )
    )


@routes.get("/v1/sshkeys")
async def list_sshkeys(request: web.Request) -> web.Response:
    found = await services(request).store.documents(caller(request).id, "sshkey")
    return envelope.json(documents.collection("sshkey", found))


@routes.get("/v1/sshkeys/{name}")
async def show_sshkey(request: web.Request) -> web.Response:
    return envelope.json(documents.view(await _one(request, "sshkey", "name")))


async def _add(request: web.Request, document: Document) -> None:
    try:
        await services(request).store.add_document(document)
    except Conflict as exc:
        raise AlreadyExists(str(exc), more="pick another name") from None


async def _one(request: web.Request, kind: str, param: str) -> Document:
    key = request.match_info[param]
    found = await services(request).store.document(caller(request).id, kind, key)
    if found is None:
        raise NotFound(f"you have no {kind} {key}")
    return found
