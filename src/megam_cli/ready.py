"""What ``megam up`` tells its owner once everything is up: where things are and who runs them.

The local owner is an operator of the gateway ``megam up`` starts: the emails of the saved
profiles that point at it and, with ``--demo``, the demo account join ``MEGAM_ADMIN_EMAILS`` and
``--operator``. The list is fixed when the gateway starts.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from megam import log
from megam_cli import credentials, demo
from megam_cli.client import ApiError

logger = log.get("megam.up")


def local_operators(url: str, *, with_demo: bool, extra: Iterable[str] = ()) -> frozenset[str]:
    """The emails ``megam up`` makes operators of its gateway at ``url``."""
    emails = {email.strip().lower() for email in extra if email.strip()}
    try:
        stored = credentials.read_profiles()
    except ValueError:  # an unreadable credentials file adds nobody; the demo reports it
        stored = credentials.Profiles()
    emails.update(
        c.email.lower() for c in stored.profiles.values() if c.email and _same_gateway(c.url, url)
    )
    if with_demo:
        emails.add(demo.demo_email(stored))
    return frozenset(emails)


def _same_gateway(saved_url: str, url: str) -> bool:
    try:
        return credentials.gateway_url(saved_url) == credentials.gateway_url(url)
    except ValueError:
        return False


def ready_block(
    url: str,
    *,
    operators: Iterable[str],
    owner: credentials.Credentials | None,
    credentials_file: Path,
) -> str:
    """The lines printed once the gateway, herk and uid are up."""
    if owner is not None and owner.email:
        sign_in = (
            f"{owner.email}, api key in {credentials_file} (profile {owner.profile}); "
            f"'megam --profile {owner.profile} accounts show --show-key' prints it"
        )
    else:
        sign_in = "no account yet: run 'megam accounts create YOU@EXAMPLE.COM'"
    names = sorted(operators)
    operator = (
        f"{', '.join(names)} ('megam cluster status')"
        if names
        else "nobody: restart with --operator EMAIL, or set MEGAM_ADMIN_EMAILS"
    )
    rows = [
        ("gateway", f"{url}/v1"),
        ("console", f"{url}/"),
        ("sign in", sign_in),
        ("operator", operator),
        ("stop", "Ctrl-C (twice to stop at once)"),
    ]
    return "megam is up\n" + "".join(f"  {key:9} {value}\n" for key, value in rows)


def owner_of(url: str) -> credentials.Credentials | None:
    """The current saved profile, when it points at this gateway."""
    try:
        stored = credentials.read_profiles()
    except ValueError:
        return None
    current = stored.profiles.get(credentials.profile_name(None, stored))
    return current if current and _same_gateway(current.url, url) else None


async def welcome(url: str, *, with_demo: bool, operators: frozenset[str]) -> None:
    """Print the ready block and, with ``--demo``, run the demo; nothing here stops the services."""
    owner = owner_of(url)
    if with_demo:
        try:
            owner = await demo.demo_account(url)
        except (ApiError, OSError, ValueError) as exc:
            _demo_failed("could not sign up the demo account", exc)
    print(
        ready_block(
            url,
            operators=operators,
            owner=owner,
            credentials_file=credentials.credentials_path(),
        ),
        flush=True,
    )
    if not (with_demo and owner is not None):
        return
    try:
        await demo.run_demo(url, owner)
    except (ApiError, OSError, ValueError) as exc:
        _demo_failed("the demo could not finish", exc)
        return
    profile = "" if credentials.profile_name() == owner.profile else f"--profile {owner.profile} "
    print(
        f"\ntry: megam {profile}nodes list · megam {profile}logs NODE --follow"
        f" · megam {profile}nodes delete NODE --follow\n",
        flush=True,
    )


def _demo_failed(what: str, exc: BaseException) -> None:
    message = exc.message if isinstance(exc, ApiError) else str(exc)
    logger.warning("demo.failed", step=what, error=message)
    print(f"megam up: {what}: {message}; the services keep running", file=sys.stderr, flush=True)
