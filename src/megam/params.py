"""The params of the job types the gateway publishes: part of the wire contract.

``local.create`` takes :class:`RunListParams`, ``local.delete`` :class:`NoParams`, ``knife.create``
and ``knife.delete`` :class:`KnifeParams`. The gateway checks what it publishes against these, so
a user hears of a bad value from the API; herk checks every request again, because any AMQP
producer may publish one. ``docs/wire.md`` describes them; ``tests/test_wire.py`` keeps the two in
step. Values end up as argv elements of knife, so they are restricted to characters that cannot be
mistaken for an option or smuggle a second argument.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec

from megam import chef_repos

# Each pattern ends in $(?!\n): Python's $ also matches before a final newline, which would let
# "ami-1\n" through; the lookahead keeps the pattern valid in JSON Schema (the OpenAPI document).
RUN_LIST_ITEM: Final = re.compile(r"^(role|recipe)\[[A-Za-z0-9_.:@-]{1,128}\]$(?!\n)")
RunListItem = Annotated[
    str,
    msgspec.Meta(
        pattern=RUN_LIST_ITEM.pattern,
        description="a Chef run-list entry such as role[web] or recipe[nginx::default]",
    ),
]
ARG_VALUE_RULE: Final = (
    "at most 255 characters from A-Z a-z 0-9 _ . / : @ + = , ~ and -, not starting with '-'"
)
ArgValue = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^([A-Za-z0-9_./:@+=,~][A-Za-z0-9_./:@+=,~-]{0,254})?$(?!\n)",
        description=f"a knife flag value: {ARG_VALUE_RULE}",
    ),
]
LocalPath = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^/[^\x00-\x1f]{0,1023}$(?!\n)",
        description="an absolute path on the herk host",
    ),
]
KnifeCloudType = Literal["ec2", "google", "openstack", "hp"]
"""The clouds reached through knife; the ``local`` cloud has job types of its own."""


class Params(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The base of every job type's params: an unknown field is refused, never ignored."""


class NoParams(Params, frozen=True):
    """``{}``"""


class RunListParams(Params, frozen=True):
    """``{"run_list": ["role[web]", ...]}``; the list may be empty."""

    run_list: list[RunListItem] = []


class CloudSpec(Params, frozen=True):
    """What to launch."""

    groups: ArgValue = ""
    image: ArgValue = ""
    flavor: ArgValue = ""
    tenant_id: ArgValue = ""


class CloudAccess(Params, frozen=True):
    """How to reach what was launched, and where."""

    ssh_key: ArgValue = ""
    identity_file: ArgValue = ""
    ssh_user: ArgValue = ""
    zone: ArgValue = ""
    region: ArgValue = ""
    sshpub_location: ArgValue = ""
    vault_location: ArgValue = ""


class Cloud(Params, frozen=True):
    cctype: KnifeCloudType
    spec: CloudSpec = CloudSpec()
    access: CloudAccess = CloudAccess()


KNIFE_RB_REFUSED: Final = (
    "knife_rb: a path on the herk host is refused: knife loads a knife.rb as Ruby, and herk runs "
    "only what was handed over through the API. Give its content as the credential `knife_rb` "
    "of the cloud (sealed like the cloud's keys)."
)


class ChefRepo(Params, frozen=True):
    """A git chef-repo herk fetches for the job (docs/herk.md, Chef repos from git): ``url``
    (:func:`megam.chef_repos.url_problem`) at ``ref``, a branch, tag or commit ("" for the
    repository's default branch). A private repo's ssh deploy key travels sealed, as the secret
    ``chef_repo_deploy_key``."""

    url: Annotated[str, msgspec.Meta(max_length=1024)]
    ref: Annotated[str, msgspec.Meta(max_length=255)] = ""

    def __post_init__(self) -> None:
        # the syntax only: whether local paths are fetched is the herk operator's choice
        problem = chef_repos.url_problem(self.url, allow_local=True)
        problem = problem or chef_repos.ref_problem(self.ref)
        if problem:
            raise ValueError(problem)


class KnifeParams(Params, frozen=True):
    """``knife.create`` / ``knife.delete``: a cloud, a run list, and optionally a git chef-repo
    whose ``.chef/knife.rb`` knife loads.

    ``knife_rb`` survives only to refuse it with a reason: it named a file on the herk host, which
    a tenant could point at any Ruby file there. The tenant's knife.rb now travels sealed, as the
    cloud's credential ``knife_rb`` (herk.chef.KnifeConfig)."""

    cloud: Cloud
    run_list: list[RunListItem] = []
    knife_rb: str | None = None
    chef_repo: ChefRepo | None = None
    instance_id: ArgValue = ""
    """``knife.delete``: the cloud's id of the server, as ``server create`` printed it
    (:func:`recorded_instance_id`); knife-ec2 and knife-openstack delete by id."""

    def __post_init__(self) -> None:
        if self.knife_rb is not None:
            raise ValueError(KNIFE_RB_REFUSED)


INSTANCE_ID_LINE: Final = re.compile(
    r"^Instance ID: ([A-Za-z0-9_.:@+=,~][A-Za-z0-9_.:@+=,~-]{0,254})\s*$(?!\n)"
)
"""How knife-ec2 and knife-openstack report the server they created (``msg_pair``); the id is a
flag value (ArgValue) or not an id."""
EC2_INSTANCE_ID: Final = re.compile(r"^i-[0-9a-f]{8,17}$(?!\n)")
DELETES_BY_ID: Final = ("ec2", "openstack")
"""The plugins whose ``server delete`` takes instance ids (knife-google takes instance names)."""


def recorded_instance_id(lines: Iterable[str], cctype: str) -> str:
    """The instance id a ``knife <cctype> server create`` printed, from its log; "" if none, or
    if the cloud deletes by name, or if what was printed is not an id of that cloud."""
    if cctype not in DELETES_BY_ID:
        return ""
    for line in lines:
        found = INSTANCE_ID_LINE.match(line)
        if found:
            instance_id = found.group(1)
            valid = cctype != "ec2" or EC2_INSTANCE_ID.match(instance_id)
            return instance_id if valid else ""
    return ""


class ParamsError(ValueError):
    """Params that do not fit their schema; the message names the field."""


P = TypeVar("P", bound=Params)


def check(kind: type[P], raw: dict[str, Any], what: str) -> P:
    """``raw`` as ``kind``, or :class:`ParamsError` saying what is wrong with the params of
    ``what`` (a job type or a schema)."""
    try:
        return msgspec.convert(raw, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise ParamsError(f"bad params for {what}: {exc}") from None
