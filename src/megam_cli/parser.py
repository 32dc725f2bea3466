"""The ``megam`` command line: every command and flag, with help in plain words."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import megam

DESCRIPTION = "megam: run the platform's services, or use it as a client of the gateway."
EPILOG = """\
Start with 'megam up --demo'. Client commands find the gateway and who you are in MEGAM_URL,
MEGAM_EMAIL and MEGAM_API_KEY, else in the chosen profile of ~/.megam/credentials.json
(MEGAM_CREDENTIALS), written by 'megam accounts create' and 'megam login'.
'megam COMMAND --help' explains each command.
"""


URL_HELP = "the gateway's URL (MEGAM_URL, default http://127.0.0.1:9000)"


def _service_flags(parser: argparse.ArgumentParser, *, amqp_default_hint: str) -> None:
    parser.add_argument("--data-dir", help="state directory (MEGAM_DATA_DIR, default ~/.megam)")
    parser.add_argument(
        "--amqp", dest="amqp_url", help=f"RabbitMQ URL (MEGAM_AMQP_URL; {amqp_default_hint})"
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="how much to log (MEGAM_LOG_LEVEL, default info)",
    )
    parser.add_argument(
        "--log-json",
        action="store_true",
        default=None,
        help="log one JSON object per line (the default when stderr is not a terminal)",
    )


def _store_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", dest="store_url", help="store URL (MEGAM_STORE_URL, sqlite in the data dir)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="megam", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"megam {megam.__version__}")
    parser.add_argument(
        "--profile",
        help="which saved credentials to use (MEGAM_PROFILE; default: the current profile)",
    )
    parser.add_argument("--json", action="store_true", help="print the data as JSON")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up",
        help="run gateway + herk + uid in one process",
        description="Run the gateway (API and console), herk and uid in one process, on an"
        " in-process bus and SQLite in the data dir. Safe to run again on the same data dir."
        " Once all is up it prints where the gateway and console are, how to sign in and who"
        " is operator. Operators ('megam cluster …') are the emails in MEGAM_ADMIN_EMAILS,"
        " --operator, every saved profile pointing at this gateway (restart after 'megam"
        " accounts create' to include a new one) and, with --demo, the demo account.",
    )
    _service_flags(up, amqp_default_hint="default: embedded in-process bus")
    up.add_argument("--port", type=int, dest="gateway_port", help="gateway port (MEGAM_PORT, 9000)")
    up.add_argument("--uid-port", type=int, dest="uid_port", help="uid port (MEGAM_UID_PORT, 7609)")
    up.add_argument("--host", default="127.0.0.1", help="address to listen on")
    up.add_argument(
        "--workers", type=int, help="how many jobs run at once (MEGAM_WORKERS, 4)"
    )
    _store_flag(up)
    up.add_argument(
        "--demo",
        action="store_true",
        help="also sign up a demo account (profile 'demo'), add the local cloud and launch a"
        " demo node; safe to repeat: what exists is reused",
    )
    up.add_argument(
        "--operator",
        action="append",
        default=[],
        metavar="EMAIL",
        help="make this account an operator (may repeat). Operators are also: MEGAM_ADMIN_EMAILS,"
        " every saved profile pointing at this gateway, and the demo account with --demo",
    )

    gateway = sub.add_parser("gateway", help="run the gateway (HTTP API) against RabbitMQ")
    _service_flags(gateway, amqp_default_hint="default amqp://guest:guest@127.0.0.1:5672/")
    gateway.add_argument(
        "--port", type=int, dest="gateway_port", help="port to listen on (MEGAM_PORT, 9000)"
    )
    _store_flag(gateway)
    gateway.add_argument("--uid", dest="uid_url", help="uid service URL (MEGAM_UID_URL)")

    herk = sub.add_parser("herk", help="run one herk node (master + workers) against RabbitMQ")
    _service_flags(herk, amqp_default_hint="default amqp://guest:guest@127.0.0.1:5672/")
    herk.add_argument(
        "--workers", type=int, help="how many jobs it runs at once (MEGAM_WORKERS, 4)"
    )
    herk.add_argument(
        "--name", dest="herk_name", help="this herk node's name (MEGAM_HERK_NAME, the host name)"
    )
    herk.add_argument(
        "--metrics-port",
        type=int,
        dest="herk_metrics_port",
        help="port of its Prometheus /metrics page (MEGAM_HERK_METRICS_PORT)",
    )

    uid = sub.add_parser("uid", help="run the Snowflake id service")
    _service_flags(uid, amqp_default_hint="lease worker ids through RabbitMQ when given")
    uid.add_argument("--port", type=int, dest="uid_port", help="port to listen on (7609)")
    uid.add_argument(
        "--worker-id", type=int, dest="worker_id", help="fix the worker id (default: leased)"
    )
    uid.add_argument(
        "--datacenter-id", type=int, dest="datacenter_id", help="the datacenter id in every id"
    )

    agent = sub.add_parser("agent", help="report this node's metrics to the platform")
    _service_flags(agent, amqp_default_hint="default amqp://guest:guest@127.0.0.1:5672/")
    agent.add_argument("--node", required=True, help="the node's name, e.g. web1.megam.co")
    agent.add_argument("--account", required=True, help="the owner's account id (ACT…)")
    agent.add_argument(
        "--nginx-status", help="nginx stub_status URL, e.g. http://127.0.0.1/nginx_status"
    )
    agent.add_argument("--interval", type=float, default=10.0, help="seconds between samples")

    _client_commands(sub)
    return parser


def _client_commands(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print the data as JSON"
    )
    common.add_argument(
        "--profile",
        default=argparse.SUPPRESS,
        help="which saved credentials to use (MEGAM_PROFILE; default: the current profile)",
    )

    def command(group: Any, name: str, text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = group.add_parser(
            name, help=text, description=text, parents=[common]
        )
        return parser

    def group(name: str, text: str) -> Any:
        return sub.add_parser(name, help=text, description=text).add_subparsers(
            dest="action", required=True, metavar="ACTION"
        )

    _account_commands(group("accounts", "your account: sign up, show it"), command)
    login = command(sub, "login", "save an existing account's email and api key as a profile")
    login.add_argument("email", help="the account's email")
    _saving_flags(login)
    login.epilog = (
        "The api key is asked for (without echo) on a terminal, else read from the first line"
        " of standard input: it is never a command-line argument."
    )
    _cloud_commands(group("clouds", "cloud profiles: where and how nodes are launched"), command)
    _node_commands(group("nodes", "launch, list, show and delete nodes"), command)

    logs = command(sub, "logs", "a node's log lines")
    logs.add_argument("node", help="the node's name")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    logs.add_argument("--tail", type=int, default=100, help="how many recent lines (default 100)")

    search = command(sub, "search", "full-text search over every log line of your account")
    search.add_argument("words", nargs="+", help="the words to look for (all of them)")
    search.add_argument("--node", help="only lines of this node")
    search.add_argument("--job", help="only lines of this job (RIP…)")
    search.add_argument("--state", help="only lines of jobs in this state, e.g. failed")
    search.add_argument("--limit", type=int, default=100, help="at most this many lines")

    jobs = group("jobs", "jobs: the launches and deletes the platform runs for you")
    job_show = command(jobs, "show", "a job's state, reason and history")
    job_show.add_argument("job_id", help="the job's id (RIP…), as 'nodes launch' printed it")
    job_cancel = command(jobs, "cancel", "cancel a queued or running job")
    job_cancel.add_argument("job_id", help="the job's id (RIP…)")

    cluster = group("cluster", "operators: herk nodes, drain, scale, dead letters")
    _cluster_commands(cluster, command)


def _saving_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of the commands that save credentials as a profile."""
    parser.add_argument("--url", help=URL_HELP)
    parser.add_argument(
        "--force", action="store_true", help="replace a profile that holds another account"
    )


def _account_commands(accounts: Any, command: Any) -> None:
    create = command(accounts, "create", "create an account and save its credentials as a profile")
    create.add_argument("email", help="the new account's email")
    _saving_flags(create)
    create.epilog = (
        "The api key is generated and saved to the credentials file (MEGAM_CREDENTIALS,"
        " default ~/.megam/credentials.json). An existing profile is never replaced unasked."
    )
    show = command(accounts, "show", "who you are: email, account id, profile, gateway")
    show.add_argument("--show-key", action="store_true", help="also print the api key")


def _cloud_commands(clouds: Any, command: Any) -> None:
    add = command(clouds, "add", "add a cloud profile")
    add.add_argument("name", help="a name of your choosing, e.g. home or aws")
    add.add_argument(
        "--provider",
        required=True,
        choices=["local", "ec2", "google", "openstack", "hp"],
        help="local: nodes are processes on the herk machine; the others use knife",
    )
    flags = {
        "image": "machine image, e.g. ami-… (required for all but local)",
        "flavor": "machine size, e.g. t3.micro (required for all but local)",
        "region": "the provider's region, e.g. eu-west-1",
        "zone": "availability zone",
        "group": "security group(s)",
        "ssh-key": "name of the SSH key pair at the provider",
        "ssh-user": "user to log in as, e.g. ubuntu",
        "identity-file": "path of the SSH private key on the herk machine",
        "tenant-id": "OpenStack/HP tenant",
    }
    for flag, text in flags.items():
        add.add_argument(f"--{flag}", help=text)
    add.add_argument(
        "--credentials-file",
        type=Path,
        help="'key = value' lines with the cloud's API keys (never pass keys as flags;"
        " for ec2 AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are read if unset)",
    )
    command(clouds, "list", "list your cloud profiles")


def _node_commands(nodes: Any, command: Any) -> None:
    launch = command(nodes, "launch", "launch a node (or --count of them) on one of your clouds")
    launch.add_argument("name", help="the node's name, e.g. web.example.com: kept as given")
    launch.add_argument("--cloud", required=True, help="which of your clouds ('megam clouds list')")
    launch.add_argument(
        "--runlist", default="", help="Chef roles and recipes, comma-separated: role[web],recipe[x]"
    )
    launch.add_argument(
        "--count",
        type=int,
        help="launch N nodes named by numbering the first label: --count 2 web.example.com"
        " gives web1.example.com and web2.example.com (without --count: exactly NAME)",
    )
    launch.add_argument(
        "--follow",
        action="store_true",
        help="print the live log, then the status; exit 0 only when RUNNING",
    )
    command(nodes, "list", "list your nodes")
    show = command(nodes, "show", "a node and its jobs")
    show.add_argument("name", help="the node's name")
    node_metrics = command(nodes, "metrics", "the latest figures a node reported, with units")
    node_metrics.add_argument("name", help="the node's name")
    delete = command(nodes, "delete", "delete a node (its machine or process is stopped)")
    delete.add_argument("name", help="the node's name")
    delete.add_argument("--follow", action="store_true", help="print the log until it is done")


def _cluster_commands(cluster: Any, command: Any) -> None:
    command(cluster, "status", "herk nodes from their heartbeats, queue depth, dead letters")
    drain = command(cluster, "drain", "stop a herk node taking new jobs")
    drain.add_argument("herk", help="the herk node's name ('megam cluster status')")
    scale = command(cluster, "scale", "change a herk node's number of workers")
    scale.add_argument("herk", help="the herk node's name")
    scale.add_argument("workers", type=int, help="how many jobs it runs at once")
    dead = command(cluster, "dead", "jobs no herk could take (dead letters)")
    dead.add_argument("dead_action", choices=["list", "requeue", "discard"], help="what to do")
    dead.add_argument("ids", nargs="*", help="which (default: all, for requeue/discard)")
    dead.add_argument("--limit", type=int, default=100, help="at most this many")
