"""Chef command lines: ``knife <cloud> server create|delete`` and ``chef-client --local-mode``.

The flag maps are the original's (megam-original.md §4.2) in a fixed order, one argv element per
value (never a shell string). Cloud credentials never go into argv: they are written to a private
knife config (a 0600 file in a 0700 directory under herk's data dir, see :class:`KnifeConfig`)
that loads the tenant's knife.rb first and is passed with ``-c``; the directory is removed when
the job ends, and by the guardian or the next start when herk dies first.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from megam.params import Cloud, KnifeParams
from megam.secrets import ruby_single_quoted_body

CREATE_FLAGS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    # (flag, field) in the order knife gets them; field is "spec.x" or "access.x".
    "ec2": (
        ("-G", "spec.groups"),
        ("-I", "spec.image"),
        ("-f", "spec.flavor"),
        ("-S", "access.ssh_key"),
        ("-x", "access.ssh_user"),
        ("--identity-file", "access.identity_file"),
        ("--region", "access.region"),
    ),
    "google": (
        ("-n", "spec.groups"),
        ("-I", "spec.image"),
        ("-m", "spec.flavor"),
        ("-x", "access.ssh_user"),
        ("--identity-file", "access.identity_file"),
        ("-Z", "access.zone"),
    ),
    "hp": (
        ("-G", "spec.groups"),
        ("-I", "spec.image"),
        ("-f", "spec.flavor"),
        ("-T", "spec.tenant_id"),
        ("-S", "access.ssh_key"),
        ("-x", "access.ssh_user"),
        ("--identity-file", "access.identity_file"),
        ("-Z", "access.zone"),
    ),
    # The original declared openstack without a template; this follows knife-openstack's flags,
    # which take the tenant from the config rather than the command line.
    "openstack": (
        ("-G", "spec.groups"),
        ("-I", "spec.image"),
        ("-f", "spec.flavor"),
        ("-S", "access.ssh_key"),
        ("-x", "access.ssh_user"),
        ("--identity-file", "access.identity_file"),
        ("-Z", "access.zone"),
    ),
}

DELETE_LOCATION_FLAG: Final = {"ec2": "--region", "google": "-Z", "hp": "-Z", "openstack": "-Z"}

REQUIRED_CREDENTIALS: Final[dict[str, tuple[str, ...]]] = {
    "ec2": ("aws_access_key_id", "aws_secret_access_key"),
    "google": ("gce_project", "google_json"),
    "hp": ("hp_access_key", "hp_secret_key", "hp_tenant_id"),
    "openstack": ("openstack_username", "openstack_password", "openstack_auth_url"),
}
"""Sealed secrets each cloud needs; knife-ec2 and friends fail without them."""

GOOGLE_CREDENTIALS_FILE: Final = "google.json"
TENANT_KNIFE_RB: Final = "knife_rb"
"""The sealed secret holding the tenant's own knife.rb (its content, never a path)."""
TENANT_KNIFE_RB_FILE: Final = "tenant.rb"
FILE_SECRETS: Final = frozenset({"google_json", TENANT_KNIFE_RB})
"""Secrets written to a file of their own rather than as ``knife[:key]`` settings."""
_CREDENTIAL_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class CredentialsError(ValueError):
    """The sealed secrets do not carry what the cloud's knife plugin needs."""


def knife_create_argv(params: KnifeParams, node: str, config: Path) -> list[str]:
    cloud = params.cloud
    argv = ["knife", cloud.cctype, "server", "create"]
    if cloud.cctype == "google":
        argv += [google_instance_name(node), "-f", str(config.parent / GOOGLE_CREDENTIALS_FILE)]
    argv += ["-c", str(config), "--run-list", ",".join(params.run_list), "-N", node]
    for flag, field in CREATE_FLAGS[cloud.cctype]:
        value = _field(cloud, field)
        if value:
            argv += [flag, value]
    return argv


def knife_delete_argv(params: KnifeParams, node: str, config: Path) -> list[str]:
    """``server delete``: the identity flag is omitted, as the original did on delete."""
    cloud = params.cloud
    target = google_instance_name(node) if cloud.cctype == "google" else node
    argv = ["knife", cloud.cctype, "server", "delete", target]
    if cloud.cctype == "google":
        argv += ["-f", str(config.parent / GOOGLE_CREDENTIALS_FILE)]
    argv += ["-c", str(config), "-P", "-y", "-N", node]
    location = cloud.access.region if cloud.cctype == "ec2" else cloud.access.zone
    if location:
        argv += [DELETE_LOCATION_FLAG[cloud.cctype], location]
    return argv


def chef_client_argv(run_list: list[str]) -> list[str]:
    # --chef-license: Chef Infra Client 15+ refuses to run unattended without it (exit 172).
    return [
        "chef-client",
        "--local-mode",
        "--chef-license",
        "accept",
        "--override-runlist",
        ",".join(run_list),
    ]


def google_instance_name(node: str) -> str:
    """GCE names allow no dots: the original stripped non-word characters from the node name."""
    return re.sub(r"[^a-z0-9-]", "", node.lower())


def _field(cloud: Cloud, path: str) -> str:
    group, name = path.split(".")
    return str(getattr(getattr(cloud, group), name))


class KnifeConfig:
    """A private knife config for one job: ``with KnifeConfig(...) as path: run knife -c path``.

    It is written in a fresh 0700 directory under ``under``, a herk process's private directory
    (herk.orphans.private_directory), never in a shared temporary directory: the herk node's
    guardian and the next herk start remove what a killed herk left there. The tenant's own
    knife.rb comes only as the sealed secret ``knife_rb`` (its content, handed over through the
    API); herk writes it beside the config and loads it first. No path on the herk host is ever
    loaded: knife runs a knife.rb as Ruby.
    """

    def __init__(
        self, cctype: str, secrets: Mapping[str, str], *, under: Path | None = None
    ) -> None:
        missing = [k for k in REQUIRED_CREDENTIALS[cctype] if not secrets.get(k)]
        if missing:
            raise CredentialsError(
                f"{cctype} needs sealed secrets {', '.join(missing)} to run knife"
            )
        bad = [k for k in secrets if not _CREDENTIAL_KEY.fullmatch(k)]
        if bad:
            raise CredentialsError(f"secret names must be lower_snake_case: {', '.join(bad)}")
        self._cctype = cctype
        self._secrets = dict(secrets)
        self._under = under
        self.directory: Path | None = None

    def __enter__(self) -> Path:
        if self._under is None:
            raise ValueError("a knife config is written only under a herk private directory")
        self.directory = Path(tempfile.mkdtemp(prefix="knife-", dir=self._under))  # 0700
        try:
            self._write_files(self.directory)
        except BaseException:
            self.__exit__()
            raise
        return self.directory / "knife.rb"

    def __exit__(self, *_: object) -> None:
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def _write_files(self, directory: Path) -> None:
        tenant_rb = self._secrets.get(TENANT_KNIFE_RB)
        if tenant_rb:
            _write_private(directory / TENANT_KNIFE_RB_FILE, tenant_rb)
        if self._cctype == "google":
            _write_private(directory / GOOGLE_CREDENTIALS_FILE, self._secrets["google_json"])
        _write_private(directory / "knife.rb", self._render(directory if tenant_rb else None))

    def _render(self, tenant_rb_in: Path | None) -> str:
        lines = ["# Written by herk for one job; removed when the job ends."]
        if tenant_rb_in is not None:
            tenant_rb = str(tenant_rb_in / TENANT_KNIFE_RB_FILE)
            lines.append(f"Chef::Config.from_file({ruby_string(tenant_rb)})")
        for key in sorted(self._secrets):
            if key not in FILE_SECRETS:
                lines.append(f"knife[:{key}] = {ruby_string(self._secrets[key])}")
        return "\n".join(lines) + "\n"


def ruby_string(value: str) -> str:
    """A single-quoted Ruby literal."""
    return "'" + ruby_single_quoted_body(value) + "'"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
