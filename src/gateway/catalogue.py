"""The seeded catalogue: predefs (app types) and the Chef cloud tool with its command templates.

Read-only and the same for every account, as Megam's primer seeded them (docs/original.md §2.4).
"""

from __future__ import annotations

from typing import Any, Final, get_args

from megam import params

SEEDED_AT: Final = 1_400_000_000.0  # May 2014, when these templates were current

_PREDEFS: Final = (
    # name, chef role, build tool, how the app is started
    ("rails", "rails", "bundle", "#[start] unicorn_<projectname>"),
    ("java", "java", "mvn", "#[start] tomcat"),
    ("scala", "scala", "sbt", "#[start] <projectname>"),
    ("play", "play", "sbt", "#[start] <projectname>"),
    ("akka", "akka", "sbt", "#[start] <projectname>"),
    ("nodejs", "nodejs", "npm", "#[start] node <projectname>"),
    ("postgresql", "postgresql", "none", ""),
    ("rabbitmq", "rabbitmq", "none", ""),
    ("redis", "redis", "none", ""),
    ("riak", "riak", "none", ""),
    ("wordpress", "wordpress", "none", ""),
    ("joomla", "joomla", "none", ""),
    ("jenkins", "jenkins", "none", ""),
    ("hadoop", "hadoop", "none", ""),
    ("scmmanager", "scmmanager", "none", ""),
    ("orion", "orion", "none", ""),
    ("otrs", "otrs", "none", ""),
    ("redmine", "redmine", "none", ""),
    ("liferay", "liferay", "none", ""),
    ("sugercrm", "sugercrm", "none", ""),
    ("zarafa", "zarafa", "none", ""),
)

PREDEFS: Final[dict[str, dict[str, Any]]] = {
    name: {
        "id": f"PRE{index}",
        "name": name,
        "provider": "chef",
        "provider_role": role,
        "build_monkey": build,
        "runtime_exec": runtime,
        "created_at": SEEDED_AT,
    }
    for index, (name, role, build, runtime) in enumerate(_PREDEFS, start=1)
}


def _template(cctype: str, create: str, name_flag: str, delete: str) -> dict[str, Any]:
    return {
        "cctype": cctype,
        "cloud_instruction_group": {
            "server": [
                {"action": "create", "command": create, "name": name_flag},
                {"action": "delete", "command": delete, "name": ""},
                {"action": "list", "command": "server list", "name": ""},
            ],
            "instance": [{"action": "data", "command": "instance set", "name": ""}],
        },
    }


_KNIFE_DELETE = "server delete <node_name> -c -P -y"

CLOUD_TEMPLATES: Final[dict[str, dict[str, Any]]] = {
    t["cctype"]: t
    for t in (
        _template("ec2", "server create -c", "-N", _KNIFE_DELETE),
        _template("hp", "server create -c", "-N", _KNIFE_DELETE),
        _template("gogrid", "server create -c", "-N", _KNIFE_DELETE),
        _template("opennebula", "server create -c", "-N", _KNIFE_DELETE),
        _template("profitbricks", "server create -c", "--name", _KNIFE_DELETE),
        _template(
            "google", "server create <node_name> -f -c", "", "server delete <node_name> -f -c -P -y"
        ),
        {"cctype": "rackspace", "cloud_instruction_group": {}},
        {"cctype": "openstack", "cloud_instruction_group": {}},
        # Not Megam's: herk's own cloud, so that the portal's builders can launch on it too. The
        # gateway builds every job from the node's structured fields, never from these strings.
        _template("local", "server create -c", "-N", "server delete <node_name> -c -y"),
    )
}

LAUNCHABLE: Final = ("local", *get_args(params.KnifeCloudType))
"""The cloud types herk can launch on: its local cloud and those it has a knife plugin for."""


def launch_refusal(cctype: str) -> tuple[str, str] | None:
    """Why a node cannot be launched on a ``cctype`` cloud (message, more), or None if it can.

    Predef clouds of any type are stored, as the original stored them; only a launch needs herk.
    """
    if cctype in LAUNCHABLE:
        return None
    hint = " (the knife plugin of aws-ec2 is ec2)" if cctype == "aws-ec2" else ""
    return (
        f"herk cannot launch nodes on a {cctype} cloud: it has no knife plugin for {cctype}",
        f"clouds herk launches on: {', '.join(LAUNCHABLE)}{hint}; nothing was launched",
    )


CLOUDTOOLS: Final[dict[str, dict[str, Any]]] = {
    "chef": {
        "id": "CTO1",
        "name": "chef",
        "cli": "knife",
        "cloudtemplates": list(CLOUD_TEMPLATES.values()),
        "created_at": SEEDED_AT,
    }
}


def create_template(cctype: str) -> tuple[str, str]:
    """(knife sub-command, name flag) for creating a server on ``cctype``."""
    steps = CLOUD_TEMPLATES.get(cctype, {}).get("cloud_instruction_group", {}).get("server", [])
    for step in steps:
        if step["action"] == "create":
            return step["command"], step["name"]
    return "server create -c", "-N"


_MARKETPLACE: Final = (
    # name, category, the predef its node runs, what it is
    ("wordpress", "blog", "wordpress", "WordPress, the blogging platform"),
    ("joomla", "cms", "joomla", "Joomla content management"),
    ("jenkins", "ci", "jenkins", "Jenkins continuous integration"),
    ("redmine", "projects", "redmine", "Redmine project management"),
    ("postgresql", "database", "postgresql", "PostgreSQL, the relational database"),
    ("riak", "database", "riak", "Riak, the distributed key-value store"),
    ("rabbitmq", "messaging", "rabbitmq", "RabbitMQ message broker"),
    ("redis", "database", "redis", "Redis in-memory data store"),
)

MARKETPLACES: Final[dict[str, dict[str, Any]]] = {
    name: {
        "id": f"MKP{index}",
        "name": name,
        "appdetails": {"logo": f"{name}.png", "category": category, "description": about},
        "features": {"feature1": about, "feature2": "", "feature3": "", "feature4": ""},
        "plans": [
            {
                "price": "0",
                "description": "free",
                "plantype": "free",
                "version": "",
                "source": "",
                "os": "ubuntu",
            }
        ],
        "applinks": {
            key: ""
            for key in (
                "free_support",
                "paid_support",
                "home_link",
                "info_link",
                "content_link",
                "wiki_link",
                "source_link",
            )
        },
        "attach": False,
        "predefnode": predef,
        "approved": True,
        "created_at": SEEDED_AT,
    }
    for index, (name, category, predef, about) in enumerate(_MARKETPLACE, start=1)
}
