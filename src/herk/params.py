"""The params schemas of the job types: part of the wire contract, validated by herk.

A catalogue entry names its schema (``params = "knife"``); a request whose params do not fit is
rejected to the dead-letter queue with the reason. Values that end up in an argv are restricted to
characters that cannot be mistaken for an option or smuggle a second argument.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec

RunListItem = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^(role|recipe)\[[A-Za-z0-9_.:@-]{1,128}\]$",
        description="a Chef run-list entry such as role[web] or recipe[nginx::default]",
    ),
]
ArgValue = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^([A-Za-z0-9_./:@+=,~][A-Za-z0-9_./:@+=,~-]{0,254})?$",
        description="a flag value: no spaces, must not start with '-'",
    ),
]
LocalPath = Annotated[
    str, msgspec.Meta(pattern=r"^/[^\x00-\x1f]{0,1023}$", description="an absolute path")
]
CloudType = Literal["ec2", "google", "openstack", "hp"]


class _Params(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class NoParams(_Params, frozen=True):
    """``{}``"""


class RunListParams(_Params, frozen=True):
    """``{"run_list": ["role[web]", ...]}``; the list may be empty."""

    run_list: list[RunListItem] = []


class CloudSpec(_Params, frozen=True):
    groups: ArgValue = ""
    image: ArgValue = ""
    flavor: ArgValue = ""
    tenant_id: ArgValue = ""


class CloudAccess(_Params, frozen=True):
    ssh_key: ArgValue = ""
    identity_file: ArgValue = ""
    ssh_user: ArgValue = ""
    zone: ArgValue = ""
    region: ArgValue = ""
    sshpub_location: ArgValue = ""
    vault_location: ArgValue = ""


class Cloud(_Params, frozen=True):
    cctype: CloudType
    spec: CloudSpec = CloudSpec()
    access: CloudAccess = CloudAccess()


class KnifeParams(_Params, frozen=True):
    """``knife.create`` / ``knife.delete``: a predef cloud, a run list and an optional knife.rb."""

    cloud: Cloud
    run_list: list[RunListItem] = []
    knife_rb: LocalPath | None = None


class ConvergeParams(_Params, frozen=True):
    """``chef.converge``: ``chef-client --local-mode`` in ``chef_repo`` (or the node home)."""

    run_list: list[RunListItem]
    chef_repo: LocalPath | None = None


SCHEMAS: Final[dict[str, type[_Params]]] = {
    "none": NoParams,
    "run_list": RunListParams,
    "knife": KnifeParams,
    "converge": ConvergeParams,
}


class ParamsError(ValueError):
    """The params of a request do not fit its job type's schema."""


def validate(schema: str, params: dict[str, Any]) -> _Params:
    kind = SCHEMAS[schema]
    try:
        return msgspec.convert(params, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise ParamsError(f"bad params for schema {schema!r}: {exc}") from None


def field_names(schema: str) -> frozenset[str]:
    return frozenset(SCHEMAS[schema].__struct_fields__)
