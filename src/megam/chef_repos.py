"""Which git chef-repos herk fetches: the rules for a repo's URL and ref, shared by the gateway
(a cloud tool setting is refused at the API) and herk (a request from any producer is checked
again before git runs).

A URL reaches ``git fetch`` as an argument, so anything git would read as an option or as a
remote helper (``ext::sh -c …`` runs a command) is refused, not escaped: only ``https://``,
``ssh://`` and ``user@host:path`` are fetched, and local paths (``/path``, ``file:///path``) only
where the operator allows them (:func:`local_allowed`, for tests and single-host setups: a local
path reads whatever herk's user can read).
"""

from __future__ import annotations

import os
import re
from typing import Final

DEPLOY_KEY_NAME: Final = "chef_repo_deploy_key"
"""The sealed secret that holds a private repo's ssh deploy key (never written to knife.rb)."""
ALLOW_LOCAL_ENV: Final = "MEGAM_CHEF_REPO_ALLOW_LOCAL"
URL_RULE: Final = "use https://host/path, ssh://[user@]host[:port]/path or user@host:path"

_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
_HTTPS = re.compile(rf"^https://{_HOST}(?::[0-9]{{1,5}})?/[^\s@]*$(?!\n)")
_SSH = re.compile(rf"^ssh://(?:[A-Za-z0-9_][A-Za-z0-9._-]*@)?{_HOST}(?::[0-9]{{1,5}})?/\S*$(?!\n)")
_SCP = re.compile(rf"^[A-Za-z0-9_][A-Za-z0-9._-]*@{_HOST}:(?![-/:])\S+$(?!\n)")
_LOCAL = re.compile(r"^(?:file://)?/[^\s]*$(?!\n)")
_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./+-]{0,254}$(?!\n)")


def local_allowed() -> bool:
    """Whether local repositories may be fetched (``MEGAM_CHEF_REPO_ALLOW_LOCAL=1``)."""
    return os.environ.get(ALLOW_LOCAL_ENV) == "1"


def url_problem(url: str, *, allow_local: bool) -> str | None:
    """Why herk will not fetch ``url``, in the user's words; None when it will."""
    if not url or len(url) > 1024 or any(c.isspace() or ord(c) < 0x20 for c in url):
        return "a git URL is 1 to 1024 characters without spaces"
    if url.startswith("-"):
        return f"git URL {url!r} looks like an option"
    if "::" in url.split("/", 1)[0] or url.startswith("ext:"):
        return f"git URL {url!r} names a remote helper (transport::address); {URL_RULE}"
    if url.startswith("https://") and "@" in url.split("/", 3)[2]:
        return (
            "put no credentials in a git URL (they would be stored and logged): "
            "use ssh with a deploy key"
        )
    if _HTTPS.match(url) or _SSH.match(url) or _SCP.match(url):
        return None
    if _LOCAL.match(url):
        if allow_local:
            return None
        return (
            f"git URL {url!r} is a path on the herk host: local repositories are fetched only "
            f"where the operator sets {ALLOW_LOCAL_ENV}=1; {URL_RULE}"
        )
    return f"git URL {url!r} is not one herk fetches: {URL_RULE}"


def ref_problem(ref: str) -> str | None:
    """Why ``ref`` is not a branch, tag or commit name herk looks up; None when it is."""
    if ref == "":
        return None  # the repository's default branch
    if (
        not _REF.match(ref)
        or ".." in ref
        or "//" in ref
        or ref.endswith(("/", ".", ".lock"))
    ):
        return (
            f"git ref {ref!r} is not a branch, tag or commit name: at most 255 characters from "
            "A-Z a-z 0-9 _ . / + -, not starting with '.', '/', '+' or '-', without '..'"
        )
    return None

