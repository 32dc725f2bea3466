"""Where the CLI finds who it is: ``MEGAM_URL``/``MEGAM_EMAIL``/``MEGAM_API_KEY``, else the
credentials file that ``megam accounts create`` writes (``$MEGAM_CREDENTIALS`` or
``~/.megam/credentials.json``, mode 0600).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import orjson

from megam.config import DEFAULT_GATEWAY_PORT


@dataclasses.dataclass(frozen=True, slots=True)
class Credentials:
    url: str
    email: str | None
    api_key: str | None


def credentials_path() -> Path:
    return Path(os.environ.get("MEGAM_CREDENTIALS") or Path.home() / ".megam" / "credentials.json")


def load(url_override: str | None = None) -> Credentials:
    stored: dict[str, str] = {}
    path = credentials_path()
    if path.exists():
        stored = orjson.loads(path.read_bytes())
    url = (
        url_override
        or os.environ.get("MEGAM_URL")
        or stored.get("url")
        or f"http://127.0.0.1:{DEFAULT_GATEWAY_PORT}"
    )
    return Credentials(
        url=url.rstrip("/"),
        email=os.environ.get("MEGAM_EMAIL") or stored.get("email"),
        api_key=os.environ.get("MEGAM_API_KEY") or stored.get("api_key"),
    )


def save(credentials: Credentials, path: Path | None = None) -> Path:
    path = path or credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(orjson.dumps(dataclasses.asdict(credentials), option=orjson.OPT_INDENT_2))
    tmp.replace(path)
    return path
