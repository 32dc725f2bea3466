"""A cloud tool setting's git chef-repo: checked when the setting is created, and copied into a
predef cloud that names the setting, so that every launch on that cloud (and every later delete,
which reads the node's copy of its cloud) gives herk the repo, the ref and the deploy key.

The cloud keeps the repo's URL and ref in its access as ``chef_repo`` and ``chef_ref``
(:data:`ACCESS_FIELDS`; shown with the cloud, they are not secret) and the deploy key among its
encrypted credentials as ``chef_repo_deploy_key``; :func:`knife_params_repo` lifts the first two
out of the access into the knife params' ``chef_repo`` (megam.params.ChefRepo), and the key
travels sealed with the cloud's credentials.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from gateway.errors import BadRequest, NotFound, Unavailable
from gateway.services import Services
from gateway.store.records import Document
from megam import chef_repos
from megam.secrets import SecretError

ACCESS_FIELDS: Final = ("chef_repo", "chef_ref")


class SettingRepo(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    ref: str
    deploy_key: str | None


def repo_problem(url: str, ref: str) -> str | None:
    """Why herk would not fetch this repo at this ref, in the user's words; None if it would."""
    allowed = chef_repos.local_allowed()
    return chef_repos.url_problem(url, allow_local=allowed) or chef_repos.ref_problem(ref)


def check_setting(repo: str, ref: str, deploy_key: str) -> None:
    """:class:`BadRequest` for a tool setting whose repo herk would refuse to fetch."""
    if not repo:
        if ref or deploy_key:
            raise BadRequest(
                "a ref or a deploy key needs a repo", more="repo is the chef-repo's git URL"
            )
        return
    problem = repo_problem(repo, ref)
    if problem:
        raise BadRequest(f"repo cannot be fetched: {problem}", more=chef_repos.URL_RULE)


async def setting_repo(svc: Services, account_id: str, name: str) -> SettingRepo:
    """The git repo of the account's cloud tool setting named ``name`` (its id or repo_name)."""
    found = [
        doc
        for doc in await svc.store.documents(account_id, "cloudtoolsetting")
        if name in (doc.id, doc.body.get("repo_name"))
    ]
    if not found:
        raise NotFound(
            f"you have no cloud tool setting {name}",
            more="create it first with POST /v1/cloudtoolsettings/content "
            '{"repo_name": "...", "repo": "<git URL>", "ref": "<branch, tag or commit>"}',
        )
    if len(found) > 1:
        raise BadRequest(
            f"you have {len(found)} cloud tool settings named {name}",
            more="name one by its id (CTS…)",
        )
    return _repo_of(svc, found[0])


def _repo_of(svc: Services, document: Document) -> SettingRepo:
    url, ref = str(document.body.get("repo") or ""), str(document.body.get("ref") or "")
    if not url:
        raise BadRequest(f"cloud tool setting {document.id} names no git repo")
    problem = repo_problem(url, ref)
    if problem:
        raise BadRequest(f"cloud tool setting {document.id}: repo cannot be fetched: {problem}")
    try:
        key = svc.sealer.decrypt(document.secret_encrypted) if document.secret_encrypted else None
    except SecretError as exc:
        raise Unavailable(
            "the cloud tool setting's deploy key cannot be read", more=str(exc)
        ) from None
    return SettingRepo(url=url, ref=ref, deploy_key=key)


def cloud_access(access: dict[str, str], repo: SettingRepo | None) -> dict[str, str]:
    """The cloud's access with its tool setting's repo."""
    if repo is None:
        return access
    return {**access, "chef_repo": repo.url, "chef_ref": repo.ref}


def cloud_credentials(credentials: dict[str, str], repo: SettingRepo | None) -> dict[str, str]:
    if repo is None or not repo.deploy_key:
        return credentials
    return {**credentials, chef_repos.DEPLOY_KEY_NAME: repo.deploy_key}


def knife_params_repo(access: dict[str, str]) -> tuple[dict[str, str], dict[str, Any] | None]:
    """A cloud's access split into the knife params' ``cloud.access`` and ``chef_repo``."""
    plain = {k: v for k, v in access.items() if k not in ACCESS_FIELDS}
    url = access.get("chef_repo")
    return plain, ({"url": url, "ref": access.get("chef_ref", "")} if url else None)
