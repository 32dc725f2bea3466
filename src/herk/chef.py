"""Chef command lines: ``knife <cloud> server create|delete`` and ``chef-client --local-mode``.

The command lines are the ones the current plugins accept (``TARGETS``; checked against their
option tables in ``tests/fakes/knife-options.json``): the original's fields (docs/original.md
§4.2) reach the options that now mean them, in long forms, with every option the plugin
requires, in a fixed order, one argv element per value (never a shell string). Cloud
credentials never go into argv: they are written to a private knife config (a 0600 file in a
0700 directory under herk's data dir, see :class:`KnifeConfig`) that loads the tenant's
knife.rb first and is passed with ``--config``; the directory is removed when the job ends,
and by the guardian or the next start when herk dies first. knife-google reads its service
account key from a file beside it, named by ``GOOGLE_APPLICATION_CREDENTIALS``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from megam.params import EC2_INSTANCE_ID, Cloud, KnifeParams
from megam.secrets import ruby_single_quoted_body

TARGETS: Final = {
    "ec2": "knife-ec2 2.2.0",
    "google": "knife-google 5.0.16 on knife-cloud 4.0.20",
    "openstack": "knife-openstack 5.0.8 on knife-cloud 4.0.20",
}
"""The plugin each command line is written for (on Chef 19's knife; docs/herk.md lists them)."""

RETIRED: Final = {
    "hp": "knife-hp was emptied and deprecated in 2015 and HP Helion Public Cloud closed on "
    "2016-03-01: no current knife can reach it; use an openstack cloud (knife-openstack) for "
    "an OpenStack cloud",
}

CREATE_OPTIONS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    # (long option, field) in the order knife gets them; field is "spec.x" or "access.x". Long
    # forms only: short flags collide between the plugins' options (-G is --ssh-gateway today).
    "ec2": (
        ("--groups", "spec.groups"),
        ("--image", "spec.image"),
        ("--flavor", "spec.flavor"),
        ("--ssh-key", "access.ssh_key"),
        ("--connection-user", "access.ssh_user"),
        ("--ssh-identity-file", "access.identity_file"),
        ("--availability-zone", "access.zone"),
        ("--region", "access.region"),
    ),
    "google": (
        ("--gce-network", "spec.groups"),
        ("--gce-image", "spec.image"),
        ("--gce-machine-type", "spec.flavor"),
        ("--connection-user", "access.ssh_user"),
        ("--ssh-identity-file", "access.identity_file"),
        ("--gce-zone", "access.zone"),
    ),
    "openstack": (
        ("--openstack-groups", "spec.groups"),
        ("--image", "spec.image"),
        ("--flavor", "spec.flavor"),
        ("--openstack-tenant", "spec.tenant_id"),
        ("--openstack-ssh-key-id", "access.ssh_key"),
        ("--connection-user", "access.ssh_user"),
        ("--ssh-identity-file", "access.identity_file"),
        ("--availability-zone", "access.zone"),
    ),
}

CREATE_FIXED: Final[dict[str, tuple[str, ...]]] = {
    # Chef 15+ bootstraps fail unattended unless the license is accepted on the command line.
    "ec2": ("--chef-license", "accept"),
    # Required by knife-google and knife-openstack, which set no default; herk's nodes are Linux
    # reached over ssh (port 22).
    "google": (
        "--chef-license", "accept",
        "--connection-protocol", "ssh",
        "--connection-port", "22",
        "--image-os-type", "linux",
    ),
    "openstack": (
        "--chef-license", "accept",
        "--connection-protocol", "ssh",
        "--image-os-type", "linux",
    ),
}  # fmt: skip

DELETE_OPTIONS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "ec2": (("--region", "access.region"),),
    "google": (("--gce-zone", "access.zone"),),
    "openstack": (("--openstack-tenant", "spec.tenant_id"),),
}

REQUIRED_FIELDS: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    # what the plugins refuse to run without that only the params can give (credentials come
    # from the sealed secrets, constants from CREATE_FIXED)
    ("ec2", "create"): ("spec.image",),
    ("google", "create"): ("spec.image", "spec.flavor", "access.zone"),
    ("google", "delete"): ("access.zone",),
    ("openstack", "create"): ("spec.image", "spec.flavor"),
}

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


class KnifeParamsError(CredentialsError):
    """The params cannot make a command line the cloud's knife plugin accepts."""


def knife_problem(params: KnifeParams, action: str) -> str | None:
    """Why knife would refuse this job before touching the cloud, in the user's words; None
    when it would not. ``action`` is ``create`` or ``delete``."""
    cloud = params.cloud
    if cloud.cctype in RETIRED:
        return f"cloud type {cloud.cctype} cannot be used: {RETIRED[cloud.cctype]}"
    missing = [f for f in REQUIRED_FIELDS.get((cloud.cctype, action), ()) if not _field(cloud, f)]
    if missing:
        return (
            f"{cloud.cctype} server {action} needs {' and '.join(missing)}: "
            f"{TARGETS[cloud.cctype]} refuses to run without it"
        )
    ec2_id = params.instance_id if cloud.cctype == "ec2" else ""
    if ec2_id and not EC2_INSTANCE_ID.match(ec2_id):
        return f"instance_id {params.instance_id!r} is not an EC2 instance id (i-…)"
    return None


def knife_create_argv(params: KnifeParams, node: str, config: Path) -> list[str]:
    cloud = _usable(params, "create")
    argv = ["knife", cloud.cctype, "server", "create"]
    if cloud.cctype == "google":
        argv.append(google_instance_name(node))  # knife-google takes the instance NAME
    argv += ["--config", str(config), "--run-list", ",".join(params.run_list)]
    argv += ["--node-name", node]
    argv += _options(cloud, CREATE_OPTIONS[cloud.cctype])
    return argv + list(CREATE_FIXED[cloud.cctype])


def knife_delete_argv(params: KnifeParams, node: str, config: Path) -> list[str]:
    """``server delete`` of the server ``create`` made: knife-ec2 and knife-openstack take its
    instance id (recorded from create's ``Instance ID:`` line); without one, knife-ec2 finds it
    from the Chef node named by ``--node-name`` and knife-openstack by the server's name."""
    cloud = _usable(params, "delete")
    argv = ["knife", cloud.cctype, "server", "delete"]
    if cloud.cctype == "google":
        argv.append(google_instance_name(node))
    elif params.instance_id:
        argv.append(params.instance_id)
    elif cloud.cctype == "openstack":
        argv.append(node)
    argv += ["--config", str(config), "--purge", "--yes", "--node-name", node]
    return argv + _options(cloud, DELETE_OPTIONS[cloud.cctype])


def knife_environment(cctype: str, config: Path) -> dict[str, str]:
    """Variables knife needs besides its argv: knife-google 5 has no credentials flag and reads
    the service account key KnifeConfig wrote beside the config (0600, removed with it)."""
    if cctype == "google":
        return {"GOOGLE_APPLICATION_CREDENTIALS": str(config.parent / GOOGLE_CREDENTIALS_FILE)}
    return {}


def _usable(params: KnifeParams, action: str) -> Cloud:
    problem = knife_problem(params, action)
    if problem:
        raise KnifeParamsError(problem)
    return params.cloud


def _options(cloud: Cloud, options: tuple[tuple[str, str], ...]) -> list[str]:
    argv: list[str] = []
    for option, field in options:
        value = _field(cloud, field)
        if value:
            argv += [option, value]
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
    API); herk writes it beside the config and loads it first. The only path on the herk host
    ever loaded is ``repo_knife_rb``, the ``.chef/knife.rb`` of the tenant's own git chef-repo
    that herk checked out for this job (herk.chef_repo): knife runs a knife.rb as Ruby, so it
    comes only from what the tenant handed over through the API.
    """

    def __init__(
        self,
        cctype: str,
        secrets: Mapping[str, str],
        *,
        under: Path | None = None,
        repo_knife_rb: str | None = None,
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
        self._repo_knife_rb = repo_knife_rb
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
        if self._repo_knife_rb is not None:
            lines.append(f"Chef::Config.from_file({ruby_string(self._repo_knife_rb)})")
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
