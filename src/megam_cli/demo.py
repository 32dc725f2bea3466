"""``megam up --demo``: sign up, add the ``local`` cloud, launch a node and show its live log."""

from __future__ import annotations

from megam_cli import commands, credentials
from megam_cli.client import ApiClient, ApiError

DEMO_EMAIL = "demo@megam.local"


async def run_demo(url: str) -> bool:
    creds = await _demo_credentials(url)
    async with ApiClient(url, creds.email, creds.api_key) as api:
        clouds = await api.get("/v1/predefclouds")
        if not any(c["name"] == "local" for c in clouds["results"]):
            await commands.clouds_add(api, "local", "local", {}, None)
        taken = {n["node_name"] for n in (await api.get("/v1/nodes"))["results"]}
        base = _free_base_name(taken)
        print(f"launching {commands.fan_out_names(base, 1)[0]} on the local cloud …", flush=True)
        code = await commands.nodes_launch(
            api, base, "local", ["role[demo]", "recipe[hello]"], 1, follow=True
        )
    print(
        f"\ngateway: {url}   credentials: {credentials.credentials_path()}\n"
        "try: megam nodes list · megam logs <node> · megam nodes delete <node> --follow\n",
        flush=True,
    )
    return code == 0


def _free_base_name(taken: set[str]) -> str:
    n = 0
    while True:
        base = "demo.megam.local" if n == 0 else f"demo-{n}.megam.local"
        if commands.fan_out_names(base, 1)[0] not in taken:
            return base
        n += 1


async def _demo_credentials(url: str) -> credentials.Credentials:
    stored = credentials.load(url)
    if stored.email and stored.api_key and stored.url == url:
        async with ApiClient(url, stored.email, stored.api_key) as api:
            try:
                await api.post("/v1/auth", {})
                return stored
            except ApiError:
                pass
    async with ApiClient(url) as api:
        email = DEMO_EMAIL
        for n in range(2, 100):
            try:
                reply = await api.post("/v1/accounts/content", {"email": email})
                break
            except ApiError as exc:
                if exc.status not in (400, 409):
                    raise
                email = f"demo{n}@megam.local"
        else:
            raise ApiError(0, "could not create a demo account")
    account = commands._account_from(reply)
    creds = credentials.Credentials(url, email, account["api_key"])
    credentials.save(creds)
    return creds
