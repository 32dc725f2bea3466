"""Who may operate the cluster: accounts whose email is in ``MEGAM_ADMIN_EMAILS``.

Onboarding is open, so authority cannot come from what a client sends: the operator names the
admins in the gateway's environment, and the check is made on every request (removing an email
from the list takes effect at the next restart, without touching stored accounts).
"""

from __future__ import annotations

from aiohttp import web

from gateway.errors import Forbidden
from gateway.services import caller, services
from gateway.store.records import Account


def is_admin(request: web.Request, account: Account) -> bool:
    return account.email in services(request).options.admin_emails


def require_admin(request: web.Request) -> Account:
    account = caller(request)
    if not is_admin(request, account):
        raise Forbidden(
            "only cluster operators may do this",
            more="operators are the accounts listed in the gateway's MEGAM_ADMIN_EMAILS",
        )
    return account
