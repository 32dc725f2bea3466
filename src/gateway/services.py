"""What every handler and background task shares, kept on the application under one key."""

from __future__ import annotations

import dataclasses

import aiohttp
from aiohttp import web

from gateway.account_cache import AccountCache
from gateway.errors import Unavailable
from gateway.options import GatewayOptions
from gateway.publisher import JobPublisher
from gateway.store import Store
from gateway.store.records import Account
from gateway.tail import Notifier
from megam.bus import Bus
from megam.config import Settings
from megam.ids import IdSource
from megam.secrets import Sealer


@dataclasses.dataclass(slots=True)
class Services:
    settings: Settings
    options: GatewayOptions
    store: Store
    bus: Bus
    ids: IdSource
    sealer: Sealer
    notifier: Notifier
    publisher: JobPublisher
    accounts: AccountCache = dataclasses.field(default_factory=AccountCache)

    async def new_id(self, prefix: str) -> str:
        """A Megam id; 503 in Megam's words when the uid service cannot give one."""
        try:
            return await self.ids.next_id(prefix)
        # the uid service's IdServiceUnavailable and ClockMovedBackwards are RuntimeErrors
        except (aiohttp.ClientError, OSError, TimeoutError, RuntimeError, ValueError) as exc:
            raise Unavailable("UID not found (or) server unavailable", more=str(exc)) from exc


SERVICES = web.AppKey("megam_services", Services)
CALLER = web.RequestKey("megam_caller", Account)
REQUEST_ID = web.RequestKey("megam_request_id", str)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def caller(request: web.Request) -> Account:
    """The account that signed the request (set by the auth middleware)."""
    return request[CALLER]


def request_id(request: web.Request) -> str:
    """The id this request is logged under; jobs it creates carry it as correlation id."""
    return request[REQUEST_ID]
