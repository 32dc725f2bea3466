"""The environment a job's subprocess gets: built explicitly, never herk's own.

Herk's environment holds the broker URL and the secret key file's path; a job sees none of it. It
gets a small allow-list (PATH, HOME, locale, proxies), the names an operator lists in
``MEGAM_HERK_PASSENV`` (comma-separated, ``PREFIX_*`` for a prefix), and the job's identity.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from megam.wire import JobRequest

BASE_NAMES: Final = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
)
PASSENV_VARIABLE: Final = "MEGAM_HERK_PASSENV"
NEVER_PASSED: Final = frozenset(
    {"MEGAM_AMQP_URL", "MEGAM_STORE_URL", "MEGAM_SECRET_KEY_FILE", PASSENV_VARIABLE}
)
"""Herk's own secrets-bearing settings stay out even if an operator's pattern matches them."""
FALLBACK_PATH: Final = "/usr/local/bin:/usr/bin:/bin"


def job_environment(request: JobRequest, source: Mapping[str, str] | None = None) -> dict[str, str]:
    source = os.environ if source is None else source
    wanted = _passenv_patterns(source.get(PASSENV_VARIABLE, ""))
    env = {name: source[name] for name in BASE_NAMES if name in source}
    for name, value in source.items():
        if name not in NEVER_PASSED and any(_matches(pattern, name) for pattern in wanted):
            env[name] = value
    env.setdefault("PATH", FALLBACK_PATH)
    env.update(
        {
            "PYTHONUNBUFFERED": "1",  # Python jobs' lines reach the log stream as they are printed
            "MEGAM_JOB_ID": request.job_id,
            "MEGAM_JOB_TYPE": request.type,
            "MEGAM_NODE": request.node,
            "MEGAM_ACCOUNT": request.account,
            "MEGAM_ATTEMPT": str(request.attempt),
        }
    )
    return env


def _passenv_patterns(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _matches(pattern: str, name: str) -> bool:
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return name == pattern
