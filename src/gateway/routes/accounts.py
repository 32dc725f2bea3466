"""Onboarding (open), the signature check, and reading one's own account."""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from gateway import bodies, envelope, views
from gateway.errors import AlreadyExists, Forbidden
from gateway.schemas import AccountInput
from gateway.services import caller, services
from gateway.store import Conflict
from gateway.store.records import Account
from megam import log

logger = log.get("gateway.accounts")
routes = web.RouteTableDef()


@routes.post("/v1/accounts/content")
async def create_account(request: web.Request) -> web.Response:
    """Onboard an account; the api key is generated unless given, and returned either way."""
    svc = services(request)
    body = await bodies.parse(request, AccountInput, "account")
    api_key = body.api_key or secrets.token_urlsafe(24)
    account = Account(
        id=await svc.new_id("ACT"),
        email=body.email.lower(),
        api_key_encrypted=svc.sealer.encrypt(api_key),
        authority="admin" if body.email.lower() in svc.options.admin_emails else body.authority,
        created_at=time.time(),
    )
    try:
        await svc.store.add_account(account)
    except Conflict as exc:
        raise AlreadyExists(
            str(exc), more="sign your requests with the api key issued to it, or use another email"
        ) from None
    logger.info("account.created", account_id=account.id)
    return envelope.json(views.account(account, api_key), status=201)


@routes.post("/v1/auth")
async def check_signature(request: web.Request) -> web.Response:
    account = caller(request)
    answer = envelope.message(200, f"{account.email} is authorized", "the signature matches")
    return envelope.json({**answer, "json_claz": "Megam::Auth"})


@routes.get("/v1/accounts/{email}")
async def show_account(request: web.Request) -> web.Response:
    account = caller(request)
    if request.match_info["email"].lower() != account.email:
        raise Forbidden(
            "you can only read your own account", more=f"this request is signed by {account.email}"
        )
    api_key = services(request).sealer.decrypt(account.api_key_encrypted)
    return envelope.json(views.account(account, api_key))
