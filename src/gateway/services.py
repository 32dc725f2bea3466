"""What every handler and background task shares, kept on the application under one key."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable

import aiohttp
from aiohttp import web

from gateway.account_cache import AccountCache, SignatureCache
from gateway.cluster_view import ClusterSnapshot, ClusterView
from gateway.errors import Unavailable
from gateway.group_commit import GroupCommit
from gateway.lifecycle import is_terminal
from gateway.node_views import NodeViews
from gateway.options import GatewayOptions
from gateway.publisher import JobPublisher
from gateway.store import Conflict, Store
from gateway.store.records import Account, Job, Launch, PredefCloud
from gateway.tail import Notifier
from megam import job_types
from megam.bus import Bus
from megam.config import Settings
from megam.ids import IdSource
from megam.job_types import JobTypes
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
    cluster: ClusterView
    accounts: AccountCache = dataclasses.field(default_factory=AccountCache)
    node_views: NodeViews = dataclasses.field(default_factory=NodeViews)
    signatures: SignatureCache = dataclasses.field(default_factory=SignatureCache)
    dead_letter_turns: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    """One dead-letter call at a time: a listing holds the letters it shows, so an action
    running beside it would find none of them."""

    clouds: dict[tuple[str, str], PredefCloud] = dataclasses.field(default_factory=dict)
    launches: GroupCommit[list[Launch], Conflict | None] = dataclasses.field(init=False)
    job_types: JobTypes = dataclasses.field(init=False)
    """The job types herk's catalogue offers (``settings.actors_dir``, the files herk reads)."""

    def __post_init__(self) -> None:
        # concurrent launches share the store's writer: one transaction, a savepoint each
        self.launches = GroupCommit(self.store.add_launch_groups)
        self.job_types = job_types.read(self.settings.actors_dir)

    async def predef_cloud(self, account_id: str, name: str) -> PredefCloud | None:
        """The account's predef cloud, remembered once found: a cloud never changes after it
        is created (there is no update route), and every launch reads one."""
        cloud = self.clouds.get((account_id, name))
        if cloud is None:
            cloud = await self.store.predef_cloud(account_id, name)
            if cloud is not None and len(self.clouds) < 10_000:
                self.clouds[(account_id, name)] = cloud
        return cloud

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


async def cluster_for(request: web.Request, jobs: Iterable[Job]) -> ClusterSnapshot | None:
    """The cluster snapshot that explains why jobs wait, taken only if one of them still does."""
    if all(is_terminal(job.state) for job in jobs):
        return None
    return await services(request).cluster.snapshot()
