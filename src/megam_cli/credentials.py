"""Where the CLI finds who it is: ``MEGAM_URL``/``MEGAM_EMAIL``/``MEGAM_API_KEY``, else a named
profile of the credentials file (``$MEGAM_CREDENTIALS`` or ``~/.megam/credentials.json``, mode
0600) that ``megam accounts create`` and ``megam login`` write.

The file holds any number of profiles and which one is current::

    {"current": "default", "profiles": {"default": {"url": …, "email": …, "api_key": …}}}

The profile used is ``--profile``, else ``MEGAM_PROFILE``, else the file's current one. A file in
the first format (one ``url``/``email``/``api_key`` object) reads as the profile ``default``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from megam.config import DEFAULT_GATEWAY_PORT

DEFAULT_PROFILE = "default"


@dataclasses.dataclass(frozen=True, slots=True)
class Credentials:
    url: str
    email: str | None
    api_key: str | None
    profile: str = DEFAULT_PROFILE


@dataclasses.dataclass(slots=True)
class Profiles:
    """The credentials file's content."""

    current: str | None = None
    profiles: dict[str, Credentials] = dataclasses.field(default_factory=dict)


def credentials_path() -> Path:
    return Path(os.environ.get("MEGAM_CREDENTIALS") or Path.home() / ".megam" / "credentials.json")


def gateway_url(raw: str) -> str:
    """A gateway URL from what a user types: ``127.0.0.1:9000`` means ``http://127.0.0.1:9000``."""
    text = raw.strip()
    if "://" not in text:
        text = "http://" + text
    text = text.rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or not _has_valid_port(text):
        raise ValueError(
            f"{raw!r} is not a gateway URL: use http://HOST:PORT, e.g. http://127.0.0.1:9000"
        )
    return text


def _has_valid_port(url: str) -> bool:
    try:
        urlsplit(url).port  # noqa: B018 - raises on a port that is not a number from 0 to 65535
    except ValueError:
        return False
    return True


def read_profiles(path: Path | None = None) -> Profiles:
    path = path or credentials_path()
    try:
        raw = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return Profiles()
    except orjson.JSONDecodeError:
        raise ValueError(
            f"{path} is not a credentials file (not JSON): fix it, or move it away and run "
            "'megam login'"
        ) from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path} is not a credentials file: expected a JSON object")
    if "profiles" not in raw:  # the first format: one set of credentials
        legacy = _credentials(DEFAULT_PROFILE, raw)
        return Profiles(DEFAULT_PROFILE, {DEFAULT_PROFILE: legacy} if legacy.email else {})
    profiles = {
        name: _credentials(name, value)
        for name, value in (raw.get("profiles") or {}).items()
        if isinstance(value, dict)
    }
    current = raw.get("current")
    return Profiles(current if isinstance(current, str) else None, profiles)


def _credentials(name: str, value: dict[str, Any]) -> Credentials:
    return Credentials(
        url=str(value.get("url") or ""),
        email=value.get("email"),
        api_key=value.get("api_key"),
        profile=name,
    )


def profile_name(explicit: str | None = None, stored: Profiles | None = None) -> str:
    """Which profile a command uses: ``--profile``, ``MEGAM_PROFILE``, the current one."""
    chosen = explicit or os.environ.get("MEGAM_PROFILE")
    if chosen:
        return chosen
    stored = stored if stored is not None else read_profiles()
    return stored.current or DEFAULT_PROFILE


def default_url() -> str:
    return f"http://127.0.0.1:{DEFAULT_GATEWAY_PORT}"


def load(url_override: str | None = None, profile: str | None = None) -> Credentials:
    """Who the CLI is: the environment's ``MEGAM_*`` values over the chosen profile's."""
    stored = read_profiles()
    name = profile_name(profile, stored)
    found = stored.profiles.get(name, Credentials("", None, None, name))
    url = url_override or os.environ.get("MEGAM_URL") or found.url or default_url()
    return Credentials(
        url=gateway_url(url),
        email=os.environ.get("MEGAM_EMAIL") or found.email,
        api_key=os.environ.get("MEGAM_API_KEY") or found.api_key,
        profile=name,
    )


def conflicting(new: Credentials, stored: Profiles) -> Credentials | None:
    """The saved credentials that saving ``new`` would replace, when they differ from it."""
    old = stored.profiles.get(new.profile)
    if old is None or (old.email, old.api_key, old.url) == (new.email, new.api_key, new.url):
        return None
    return old


def save(
    credentials: Credentials, *, make_current: bool = True, path: Path | None = None
) -> Path:
    """Write ``credentials`` as their profile (replacing it) and, by default, make it current."""
    path = path or credentials_path()
    stored = read_profiles(path)
    stored.profiles[credentials.profile] = credentials
    if make_current or stored.current not in stored.profiles:
        stored.current = credentials.profile
    body = {
        "current": stored.current,
        "profiles": {
            name: {"url": c.url, "email": c.email, "api_key": c.api_key}
            for name, c in stored.profiles.items()
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(orjson.dumps(body, option=orjson.OPT_INDENT_2))
    tmp.replace(path)
    return path
