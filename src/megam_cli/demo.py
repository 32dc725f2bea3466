"""``megam up --demo``: a demo account, the ``local`` cloud and a node whose live log you watch.

Every step is safe to repeat on the same data dir: the account is the saved ``demo`` profile when
it still signs in, the cloud is added only when missing, and a demo node that is already up (or
on its way) is shown rather than launched again. A name another account holds is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from megam_cli import accounts, commands, credentials
from megam_cli.client import ApiClient, ApiError

DEMO_EMAIL = "demo@megam.local"
DEMO_PROFILE = "demo"
DEMO_CLOUD = "local"
DEMO_RUN_LIST = ["role[demo]", "recipe[hello]"]
NAMES_TRIED = 100
"""How many demo names (demo1…demo100.megam.local) and demo emails are tried before giving up."""
KEPT_STATUSES = frozenset({"RUNNING", "LAUNCHING", "PUBLISHED", "AM_HUNGRY"})
"""A demo node in one of these is the demo's node: shown again, not launched again."""


def demo_names() -> Iterator[str]:
    for n in range(1, NAMES_TRIED + 1):
        yield f"demo{n}.megam.local"


def demo_emails() -> Iterator[str]:
    yield DEMO_EMAIL
    for n in range(2, NAMES_TRIED + 1):
        yield f"demo{n}@megam.local"


def demo_email(stored: credentials.Profiles) -> str:
    """The demo account's email as saved by an earlier demo, else the one a new demo takes."""
    saved = stored.profiles.get(DEMO_PROFILE)
    return saved.email if saved and saved.email else DEMO_EMAIL


async def demo_account(url: str) -> credentials.Credentials:
    """The saved demo profile if it still signs in at ``url``, else a new demo account."""
    saved = credentials.read_profiles().profiles.get(DEMO_PROFILE)
    if saved and saved.email and saved.api_key and await signs_in(url, saved.email, saved.api_key):
        creds = credentials.Credentials(url, saved.email, saved.api_key, DEMO_PROFILE)
    else:
        creds = await _new_demo_account(url)
    credentials.save(creds, make_current=False)  # the user's own profile stays the current one
    return creds


async def signs_in(url: str, email: str, api_key: str) -> bool:
    async with ApiClient(url, email, api_key) as api:
        try:
            await api.post("/v1/auth", {})
        except ApiError as exc:
            if exc.status in (401, 403, 406):
                return False
            raise
    return True


async def _new_demo_account(url: str) -> credentials.Credentials:
    async with ApiClient(url) as api:
        for email in demo_emails():
            try:
                reply = await api.post("/v1/accounts/content", {"email": email})
            except ApiError as exc:
                if exc.status != 409:  # taken, and its key is not ours: try the next email
                    raise
                continue
            account = accounts.account_from(reply)
            return credentials.Credentials(url, email, account["api_key"], DEMO_PROFILE)
    raise ApiError(0, f"every demo email from {DEMO_EMAIL} on is taken on this gateway")


async def run_demo(url: str, creds: credentials.Credentials) -> bool:
    """Make sure the demo node exists and show it; True when it ends up RUNNING."""
    async with ApiClient(url, creds.email, creds.api_key) as api:
        await _ensure_local_cloud(api)
        nodes = (await api.get("/v1/nodes"))["results"]
        kept = demo_node_kept(nodes)
        if kept is not None:
            return await _show_again(api, kept)
        taken = {n["node_name"] for n in nodes}
        for name in demo_names():
            if name in taken:
                continue
            try:
                return await _launch(api, name)
            except ApiError as exc:
                if exc.status != 409:  # another account holds the name: take the next one
                    raise
    raise ApiError(0, "every demo node name is taken on this gateway")


def demo_node_kept(nodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first demo node that is up or on its way up, if any."""
    names = set(demo_names())
    for node in nodes:
        if node["node_name"] in names and node.get("status") in KEPT_STATUSES:
            return node
    return None


async def _ensure_local_cloud(api: ApiClient) -> None:
    clouds = (await api.get("/v1/predefclouds"))["results"]
    if any(c["name"] == DEMO_CLOUD for c in clouds):
        return
    try:
        await commands.clouds_add(api, DEMO_CLOUD, "local", {}, None)
    except ApiError as exc:
        if exc.status != 409:  # added meanwhile: what we wanted
            raise


async def _show_again(api: ApiClient, node: dict[str, Any]) -> bool:
    name, status = node["node_name"], node["status"]
    if status == "RUNNING":
        print(f"{name} is already RUNNING (an earlier demo launched it); not launching another")
        return True
    print(f"{name} is already {status} (an earlier demo launched it); following it …", flush=True)
    return await commands.follow_node(api, name, until_done=True)


async def _launch(api: ApiClient, name: str) -> bool:
    print(f"the demo node is {name}, on the {DEMO_CLOUD} cloud …", flush=True)
    code = await commands.nodes_launch(
        api, name, DEMO_CLOUD, DEMO_RUN_LIST, count=None, follow=True
    )
    return code == 0
