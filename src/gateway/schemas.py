"""Request bodies the API accepts, validated strictly with msgspec.

Bodies that mirror the original client's JSON tolerate fields this gateway does not use (old
clients send them); the short forms this gateway adds forbid unknown fields, so a typo is an error.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec

from megam import params
from megam.wire import NodeName

Email = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}$(?!\n)",
        max_length=254,
        description="an email address; compared in lower case",
    ),
]
ApiKey = Annotated[
    str,
    msgspec.Meta(
        # printable ASCII, as the original's sandbox key "IamAtlas{74}NobodyCanSeeME#07": it only
        # keys an HMAC and is sealed at rest, never put in a command line, a header or a path
        pattern=r"^[\x21-\x7e]+$(?!\n)",
        min_length=16,
        max_length=128,
        description="16 to 128 printable ASCII characters, no spaces",
    ),
]
Name = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$(?!\n)",
        max_length=64,
        description="letters, digits, '.', '_' and '-', starting with a letter or digit",
    ),
]
Text = Annotated[str, msgspec.Meta(max_length=1024)]
SecretName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$(?!\n)")]
SecretValue = Annotated[str, msgspec.Meta(max_length=16 * 1024)]
CloudType = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$(?!\n)",
        description="a cloud type, e.g. local, ec2, google, openstack, hp (those herk launches on) "
        "or any other the original stored (gogrid, opennebula, profitbricks, rackspace, aws-ec2)",
    ),
]
"""Stored as the original stored any; a launch on a type herk cannot run is refused then
(:func:`gateway.catalogue.launch_refusal`)."""
MAX_INSTANCES: Final = 50
Instances = Annotated[int, msgspec.Meta(ge=1, le=MAX_INSTANCES)]


RECORDED_AUTHORITIES: Final = ("user", "normal")


class AccountInput(msgspec.Struct, kw_only=True):
    email: Email
    api_key: ApiKey | None = None
    authority: Annotated[str, msgspec.Meta(max_length=64)] = "user"
    """Any label is accepted (the original's clients sent "admin", "admin-tom"...), but only
    user and normal are recorded as sent: onboarding is open, so a claimed admin is recorded as
    user (operators are named by MEGAM_ADMIN_EMAILS, :mod:`gateway.admin`)."""

    def __post_init__(self) -> None:
        if self.authority not in RECORDED_AUTHORITIES:
            self.authority = "user"


class CloudSpec(params.CloudSpec, kw_only=True, forbid_unknown_fields=False):
    """The wire's cloud spec, which goes to herk as it is, plus the cloud's type."""

    type_name: CloudType


class CloudAccess(params.CloudAccess, forbid_unknown_fields=False):
    """The wire's cloud access, which goes to herk as it is."""


class PredefCloudInput(msgspec.Struct, kw_only=True):
    name: Name
    spec: CloudSpec
    access: CloudAccess = msgspec.field(default_factory=CloudAccess)
    credentials: Annotated[dict[SecretName, SecretValue], msgspec.Meta(max_length=32)] = {}
    ideal: Text = ""
    performance: Text = ""
    cloudtoolsetting: Annotated[str, msgspec.Meta(max_length=64)] = ""
    """A cloud tool setting of the caller (its id or repo_name) whose git chef-repo knife uses
    for every node launched on this cloud (copied into the cloud when it is created)."""


class NodeLaunch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The short form: a name, a predef cloud of the caller and a run list."""

    node_name: NodeName
    predefcloud: Name
    run_list: list[params.RunListItem] | Annotated[str, msgspec.Meta(max_length=4096)] = []
    noofinstances: Instances | None = None
    node_type: Literal["APP", "BOLT"] = "APP"
    knife_rb: params.LocalPath | None = None


class ChefTool(msgspec.Struct, kw_only=True):
    command: Text = "knife"
    plugin: Text = ""
    run_list: Text = ""
    name: Text = ""


class CloudToolInput(msgspec.Struct, kw_only=True):
    chef: ChefTool


class ComputeInput(msgspec.Struct, kw_only=True):
    cctype: CloudType
    cc: dict[str, Text] = {}
    access: CloudAccess = msgspec.field(default_factory=CloudAccess)


class CommandInput(msgspec.Struct, kw_only=True):
    systemprovider: dict[str, Any] = {}
    compute: ComputeInput
    cloudtool: CloudToolInput


class PredefsInput(msgspec.Struct, kw_only=True):
    name: Text = ""
    scm: Text = ""
    war: Text = ""
    db: Text = ""
    queue: Text = ""


class NodeCreate(msgspec.Struct, kw_only=True):
    """The original client's node JSON (docs/original.md §2.4)."""

    node_name: NodeName
    node_type: Literal["APP", "BOLT"] = "APP"
    noofinstances: Instances = 1
    req_type: Literal["create"] = "create"
    command: CommandInput
    predefs: PredefsInput = msgspec.field(default_factory=PredefsInput)
    appdefns: dict[str, Any] = {}
    boltdefns: dict[str, Any] = {}
    appreq: dict[str, Any] = {}
    boltreq: dict[str, Any] = {}


class RequestInput(msgspec.Struct, kw_only=True):
    """A new request for an existing node; only ``delete`` goes through herk in v1."""

    node_name: NodeName
    req_type: Annotated[str, msgspec.Meta(pattern=r"^(?i:delete)$(?!\n)")]
    command: Any = None


class ScaleInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How many worker actors a herk node should run."""

    workers: Annotated[int, msgspec.Meta(ge=1, le=256)]


class DeadLetterSelection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which dead letters to act on: their ``id`` as listed, or every one listed (``all``)."""

    ids: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=1000)
    ] = []
    all: bool = False
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100


NodeStatusName = Literal[
    "AM_HUNGRY", "PUBLISHED", "LAUNCHING", "RUNNING", "NOTRUNNING", "DELETED", "NONE", ""
]
DocumentId = Annotated[str, msgspec.Meta(pattern=r"^([A-Z]{3}[0-9]{1,20})?$(?!\n)")]


class NodeUpdateInput(msgspec.Struct, kw_only=True):
    """Megam's node update: an empty string keeps the old value."""

    node_name: NodeName
    accounts_id: Text = ""
    status: NodeStatusName = ""
    appdefnsid: DocumentId = ""
    boltdefnsid: DocumentId = ""
    new_node_name: NodeName | Literal[""] = ""


class CloudToolSettingInput(msgspec.Struct, kw_only=True):
    """Which chef-repo and knife.rb to use."""

    cloud_type: Literal["chef"] = "chef"
    repo_name: Name
    repo: Text = ""
    """The chef-repo's git URL; herk fetches it for the clouds that name this setting."""
    ref: Annotated[str, msgspec.Meta(max_length=255)] = ""
    """The branch, tag or commit herk checks out; "" for the repo's default branch."""
    deploy_key: SecretValue = ""
    """A private repo's ssh deploy key: encrypted at rest, never shown again."""
    vault_location: Text = ""
    conf_location: Text = ""


class SshKeyInput(msgspec.Struct, kw_only=True):
    """An SSH key pair. ``private_key`` is encrypted at rest and never returned."""

    name: Name
    path: Text = ""
    public_key: Annotated[str, msgspec.Meta(max_length=16 * 1024)] = ""
    private_key: SecretValue = ""


class MarketplaceAddonInput(msgspec.Struct, kw_only=True):
    node_name: NodeName
    marketplace_id: Name
    config: dict[Name, dict[Name, Text]] = {}


class AppDefns(msgspec.Struct, kw_only=True):
    timetokill: Text = ""
    metered: Text = ""
    logging: Text = ""
    runtime_exec: Text = ""
    env_sh: Text = ""


class BoltDefns(AppDefns, kw_only=True):
    username: Text = ""
    apikey: SecretValue = ""
    """Encrypted at rest, never returned."""
    store_name: Text = ""
    url: Text = ""
    prime: Text = ""


class AppDefnsInput(msgspec.Struct, kw_only=True):
    node_name: NodeName
    appdefns: AppDefns


class AppDefnsUpdate(msgspec.Struct, kw_only=True):
    id: DocumentId
    node_name: NodeName
    appdefns: AppDefns


class BoltDefnsInput(msgspec.Struct, kw_only=True):
    node_name: NodeName
    boltdefns: BoltDefns


class BoltDefnsUpdate(msgspec.Struct, kw_only=True):
    id: DocumentId
    node_name: NodeName
    boltdefns: BoltDefns


class LifecycleRequestInput(msgspec.Struct, kw_only=True):
    """An app or bolt lifecycle request for a node (Megam's AppReq/BoltReq)."""

    node_name: NodeName
    req_type: Literal["start", "stop", "restart", "build"]
    lc_apply: Text = ""
    lc_additional: Text = ""
    lc_when: Text = ""


class AppReqInput(LifecycleRequestInput, kw_only=True):
    appdefns_id: DocumentId = ""


class BoltReqInput(LifecycleRequestInput, kw_only=True):
    boltdefns_id: DocumentId = ""
