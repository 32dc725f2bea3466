"""Your account: sign up, sign in with an existing one (``login``), show who you are.

Credentials are saved as profiles (:mod:`megam_cli.credentials`); a profile that holds another
account is never replaced unasked.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from megam_cli import credentials
from megam_cli.client import ApiClient, ApiError
from megam_cli.output import HUMAN, Output


async def accounts_create(
    url: str | None,
    email: str,
    api_key: str | None,
    *,
    profile: str | None = None,
    force: bool = False,
    out: Output = HUMAN,
) -> int:
    """Sign up at the gateway and save the account as a profile (never replacing one unasked)."""
    base = credentials.load(url, profile)
    target = profile_to_write(profile)
    confirm_replacing(target, force)  # before signing up: a refusal after would lose the key
    async with ApiClient(base.url) as api:
        reply = await api.post(
            "/v1/accounts/content", {"email": email, "api_key": api_key, "authority": "user"}
        )
    account = account_from(reply)
    path = credentials.save(credentials.Credentials(base.url, email, account["api_key"], target))
    out.say(
        f"account {email} created ({account.get('id', '')}); credentials saved to {path}"
        f" as profile {target}"
    )
    out.data(_without_key({**account, "profile": target, "credentials_file": str(path)}))
    return 0


def profile_to_write(explicit: str | None) -> str:
    """Where new credentials go: ``--profile``, ``MEGAM_PROFILE``, else ``default``."""
    return explicit or os.environ.get("MEGAM_PROFILE") or credentials.DEFAULT_PROFILE


def confirm_replacing(profile: str, force: bool, email: str | None = None) -> None:
    """Refuse to replace saved credentials unless asked to (``--force``, or yes on a terminal).

    Saving the same email again (``megam login`` with a new key) needs no confirmation."""
    old = credentials.read_profiles().profiles.get(profile)
    if old is None or force or (email is not None and old.email == email):
        return
    question = (
        f"profile {profile} holds {old.email} at {old.url or credentials.default_url()};"
        " replace it?"
    )
    if sys.stdin.isatty() and sys.stderr.isatty():
        sys.stderr.write(f"{question} [y/N] ")
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() in ("y", "yes"):
            return
        raise ApiError(0, f"kept profile {profile} as it was")
    raise ApiError(
        0,
        f"profile {profile} already holds {old.email}: not replaced",
        f"use --profile NAME to save under another name, or --force to replace {old.email}",
    )


async def login(
    url: str | None,
    email: str,
    api_key: str,
    *,
    profile: str | None = None,
    force: bool = False,
    out: Output = HUMAN,
) -> int:
    """Check ``email`` and ``api_key`` against the gateway, then save them as a profile."""
    target = profile_to_write(profile)
    base = credentials.load(url, target)
    confirm_replacing(target, force, email)
    async with ApiClient(base.url, email, api_key) as api:
        await api.post("/v1/auth", {})
    path = credentials.save(credentials.Credentials(base.url, email, api_key, target))
    out.say(f"signed in as {email} at {base.url}; saved to {path} as profile {target}")
    out.data({"email": email, "url": base.url, "profile": target, "credentials_file": str(path)})
    return 0


async def accounts_show(
    api: ApiClient, creds: credentials.Credentials, show_key: bool, out: Output = HUMAN
) -> int:
    account = await api.get(f"/v1/accounts/{creds.email}")
    shown = {
        **account,
        "profile": creds.profile,
        "gateway": creds.url,
        "credentials_file": str(credentials.credentials_path()),
    }
    if not show_key:
        shown = _without_key(shown)
    keys = ["email", "id", "authority", "created_at", "profile", "gateway", "credentials_file"]
    out.fields(shown, [*keys, "api_key"], data=shown)
    return 0


def _without_key(account: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in account.items() if k != "api_key" and k != "json_claz"}


def account_from(reply: Any) -> dict[str, Any]:
    """The account object, whether the gateway answered with it or with Megam's message list."""
    if isinstance(reply, dict) and "api_key" in reply:
        return reply
    for message in reply if isinstance(reply, list) else []:
        more = message.get("more")
        if isinstance(more, dict) and "api_key" in more:
            return more
    raise ApiError(0, f"unexpected answer to account creation: {reply!r}")
