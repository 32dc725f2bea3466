"""megam: run the platform's services, or use it as a client of the gateway."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from megam import process
from megam.bus import BusError
from megam.config import Settings
from megam_cli import commands, credentials, ready
from megam_cli.client import ApiClient, ApiError


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="megam", description=__doc__)
    parser.add_argument(
        "--profile",
        help="which saved credentials to use (MEGAM_PROFILE; default: the current profile)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run gateway + herk + uid in one process")
    _service_flags(up, amqp_default_hint="default: embedded in-process bus")
    up.add_argument("--port", type=int, dest="gateway_port", help="gateway port (MEGAM_PORT, 9000)")
    up.add_argument("--uid-port", type=int, dest="uid_port", help="uid port (MEGAM_UID_PORT, 7609)")
    up.add_argument("--host", default="127.0.0.1", help="address to listen on")
    up.add_argument("--workers", type=int, help="herk worker actors (MEGAM_WORKERS, 4)")
    up.add_argument(
        "--store", dest="store_url", help="store URL (MEGAM_STORE_URL, sqlite in the data dir)"
    )
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
    gateway.add_argument("--port", type=int, dest="gateway_port")
    gateway.add_argument("--store", dest="store_url")
    gateway.add_argument("--uid", dest="uid_url", help="uid service URL (MEGAM_UID_URL)")

    herk = sub.add_parser("herk", help="run one herk node (master + workers) against RabbitMQ")
    _service_flags(herk, amqp_default_hint="default amqp://guest:guest@127.0.0.1:5672/")
    herk.add_argument("--workers", type=int)
    herk.add_argument("--name", dest="herk_name", help="node name (MEGAM_HERK_NAME)")
    herk.add_argument("--metrics-port", type=int, dest="herk_metrics_port")

    uid = sub.add_parser("uid", help="run the Snowflake id service")
    _service_flags(uid, amqp_default_hint="lease worker ids through RabbitMQ when given")
    uid.add_argument("--port", type=int, dest="uid_port")
    uid.add_argument("--worker-id", type=int, dest="worker_id")
    uid.add_argument("--datacenter-id", type=int, dest="datacenter_id")

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
    accounts = sub.add_parser("accounts", help="sign up").add_subparsers(
        dest="action", required=True
    )
    create = accounts.add_parser("create", help="create an account and save its credentials")
    create.add_argument("email")
    create.add_argument("--api-key", help="choose the api key (default: generated)")
    create.add_argument("--url", help="gateway URL (MEGAM_URL)")

    clouds = sub.add_parser("clouds", help="predef clouds").add_subparsers(
        dest="action", required=True
    )
    add = clouds.add_parser("add", help="add a cloud profile")
    add.add_argument("name")
    add.add_argument(
        "--provider", required=True, choices=["local", "ec2", "google", "openstack", "hp"]
    )
    for flag in (
        "image",
        "flavor",
        "region",
        "zone",
        "group",
        "ssh-key",
        "ssh-user",
        "identity-file",
        "tenant-id",
    ):
        add.add_argument(f"--{flag}")
    add.add_argument(
        "--credentials-file",
        type=Path,
        help="'key = value' lines with the cloud's API keys (never pass keys as flags;"
        " for ec2 AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are read if unset)",
    )
    clouds.add_parser("list", help="list cloud profiles")

    nodes = sub.add_parser("nodes", help="launch and manage nodes").add_subparsers(
        dest="action", required=True
    )
    launch = nodes.add_parser("launch", help="launch node(s) on a cloud")
    launch.add_argument("name")
    launch.add_argument("--cloud", required=True)
    launch.add_argument("--runlist", default="", help="comma-separated, e.g. role[web],recipe[x]")
    launch.add_argument("--count", type=int, default=1, help="noofinstances")
    launch.add_argument(
        "--follow",
        action="store_true",
        help="print the live log, then the status; exit 0 only when RUNNING",
    )
    nodes.add_parser("list", help="list your nodes")
    show = nodes.add_parser("show", help="show a node and its requests")
    show.add_argument("name")
    node_metrics = nodes.add_parser("metrics", help="the latest metrics a node reported")
    node_metrics.add_argument("name")
    delete = nodes.add_parser("delete", help="delete a node")
    delete.add_argument("name")
    delete.add_argument("--follow", action="store_true")

    search = sub.add_parser("search", help="full-text search over all your log lines")
    search.add_argument("words", nargs="+")
    search.add_argument("--node")
    search.add_argument("--job")
    search.add_argument("--state", help="only lines of jobs in this state, e.g. failed")
    search.add_argument("--limit", type=int, default=100)

    jobs = sub.add_parser("jobs", help="jobs (requests)").add_subparsers(
        dest="action", required=True
    )
    job_show = jobs.add_parser("show", help="a job's state, reason and history")
    job_show.add_argument("job_id")

    job_cancel = jobs.add_parser("cancel", help="cancel a queued or running job")
    job_cancel.add_argument("job_id")

    cluster = sub.add_parser(
        "cluster", help="operators: herk nodes, drain, scale, dead letters"
    ).add_subparsers(dest="action", required=True)
    cluster.add_parser("status", help="herk nodes from their heartbeats, queue depth")
    drain = cluster.add_parser("drain", help="stop a herk node taking work")
    drain.add_argument("herk")
    scale = cluster.add_parser("scale", help="change a herk node's worker count")
    scale.add_argument("herk")
    scale.add_argument("workers", type=int)
    dead = cluster.add_parser("dead", help="dead-lettered requests")
    dead.add_argument("dead_action", choices=["list", "requeue", "discard"])
    dead.add_argument("ids", nargs="*", help="which (default: all, for requeue/discard)")
    dead.add_argument("--limit", type=int, default=100)

    logs = sub.add_parser("logs", help="a node's log lines")
    logs.add_argument("node")
    logs.add_argument("--follow", "-f", action="store_true")
    logs.add_argument("--tail", type=int, default=100)


def _settings(args: argparse.Namespace) -> Settings:
    keys = (
        "data_dir",
        "amqp_url",
        "store_url",
        "uid_url",
        "gateway_port",
        "uid_port",
        "herk_metrics_port",
        "workers",
        "herk_name",
        "log_level",
        "datacenter_id",
        "worker_id",
    )
    return Settings.from_env(**{k: getattr(args, k) for k in keys if hasattr(args, k)})


def _run_service(args: argparse.Namespace) -> int:
    settings = _settings(args)
    refusals: tuple[type[BaseException], ...] = (BusError, OSError)
    main: Callable[[], Awaitable[None]]
    if args.command == "up":
        from herk.catalogue import CatalogueError
        from megam.snowflake import IdUnavailable
        from megam_cli.services import up
        from uid.lease import LeaseUnavailable

        refusals += (CatalogueError, LeaseUnavailable, IdUnavailable)
        operators = ready.local_operators(
            f"http://{args.host}:{settings.gateway_port}", with_demo=args.demo, extra=args.operator
        )

        from gateway.options import GatewayOptions

        every_operator = operators | GatewayOptions.from_env().admin_emails

        async def after_start(url: str) -> None:
            await ready.welcome(url, with_demo=args.demo, operators=every_operator)

        def main() -> Awaitable[None]:
            return up(settings, host=args.host, operators=operators, after_start=after_start)
    elif args.command == "gateway":
        from gateway.main import serve as gateway_serve

        def main() -> Awaitable[None]:
            return gateway_serve(settings)
    elif args.command == "herk":
        from herk.catalogue import CatalogueError
        from herk.main import serve as herk_serve

        refusals += (CatalogueError,)

        def main() -> Awaitable[None]:
            return herk_serve(settings)
    elif args.command == "agent":
        from agent.main import serve as agent_serve

        refusals += (ValueError,)

        def main() -> Awaitable[None]:
            return agent_serve(
                node=args.node,
                account=args.account,
                amqp_url=settings.amqp_url,
                nginx_status_url=args.nginx_status,
                interval=args.interval,
            )
    else:
        from megam.snowflake import IdUnavailable
        from uid.lease import LeaseUnavailable
        from uid.main import serve as uid_serve

        refusals += (LeaseUnavailable, IdUnavailable)

        def main() -> Awaitable[None]:
            return uid_serve(settings)

    return process.run(
        main,
        name=f"megam {args.command}",
        log_level=settings.log_level,
        refusals=refusals,
        log_json=args.log_json,
    )


async def _run_client(args: argparse.Namespace) -> int:
    if args.command == "accounts":
        return await commands.accounts_create(args.url, args.email, args.api_key)
    creds = credentials.load(profile=args.profile)
    if not (creds.email and creds.api_key):
        raise ApiError(
            0,
            "no credentials: run 'megam accounts create EMAIL' or set "
            "MEGAM_EMAIL and MEGAM_API_KEY",
        )
    async with ApiClient(creds.url, creds.email, creds.api_key) as api:
        match (args.command, getattr(args, "action", None)):
            case ("clouds", "add"):
                options = {
                    k: getattr(args, k)
                    for k in (
                        "image",
                        "flavor",
                        "region",
                        "zone",
                        "group",
                        "ssh_key",
                        "ssh_user",
                        "identity_file",
                        "tenant_id",
                    )
                }
                return await commands.clouds_add(
                    api, args.name, args.provider, options, args.credentials_file
                )
            case ("clouds", "list"):
                return await commands.clouds_list(api)
            case ("nodes", "launch"):
                run_list = [item.strip() for item in args.runlist.split(",") if item.strip()]
                return await commands.nodes_launch(
                    api, args.name, args.cloud, run_list, args.count, args.follow
                )
            case ("nodes", "list"):
                return await commands.nodes_list(api)
            case ("nodes", "show"):
                return await commands.nodes_show(api, args.name)
            case ("nodes", "metrics"):
                return await commands.node_metrics(api, args.name)
            case ("nodes", "delete"):
                return await commands.nodes_delete(api, args.name, args.follow)
            case ("search", _):
                return await commands.search(
                    api, args.words, args.node, args.job, args.state, args.limit
                )
            case ("jobs", "show"):
                return await commands.jobs_show(api, args.job_id)
            case ("jobs", "cancel"):
                return await commands.jobs_cancel(api, args.job_id)
            case ("cluster", "status"):
                return await commands.cluster_status(api)
            case ("cluster", "drain"):
                return await commands.cluster_drain(api, args.herk)
            case ("cluster", "scale"):
                return await commands.cluster_scale(api, args.herk, args.workers)
            case ("cluster", "dead"):
                return await commands.dead_letters(api, args.dead_action, args.ids, args.limit)
            case ("logs", _):
                return await commands.logs(api, args.node, args.follow, args.tail)
    raise AssertionError(f"unhandled command {args.command}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("up", "gateway", "herk", "uid", "agent"):
        try:
            return _run_service(args)
        except ValueError as exc:
            print(f"megam: {exc}", file=sys.stderr)
            return 2
    try:
        return asyncio.run(_run_client(args))
    except ApiError as exc:
        detail = f"\n  {exc.more}" if exc.more else ""
        print(f"megam: {exc.message}{detail}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"megam: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
