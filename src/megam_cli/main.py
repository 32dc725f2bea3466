"""megam: run the platform's services, or use it as a client of the gateway."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable

from megam import process
from megam.bus import BusError
from megam.config import Settings
from megam_cli import accounts, commands, credentials, errors, ready
from megam_cli.client import ApiClient, ApiError
from megam_cli.output import Output
from megam_cli.parser import build_parser


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
    out = Output(json=getattr(args, "json", False))
    profile = getattr(args, "profile", None)
    if args.command == "accounts" and args.action == "create":
        return await accounts.accounts_create(
            args.url, args.email, None, profile=profile, force=args.force, out=out
        )
    if args.command == "login":
        api_key = _read_api_key(args.email)
        return await accounts.login(
            args.url, args.email, api_key, profile=profile, force=args.force, out=out
        )
    creds = credentials.load(profile=profile)
    if not (creds.email and creds.api_key):
        raise ApiError(
            0,
            f"not signed in (profile {creds.profile})",
            "run 'megam login EMAIL' or 'megam accounts create EMAIL', or set MEGAM_EMAIL and"
            " MEGAM_API_KEY",
        )
    async with ApiClient(creds.url, creds.email, creds.api_key) as api:
        return await _dispatch(api, creds, args, out)


async def _dispatch(
    api: ApiClient, creds: credentials.Credentials, args: argparse.Namespace, out: Output
) -> int:
    match (args.command, getattr(args, "action", None)):
        case ("accounts", "show"):
            return await accounts.accounts_show(api, creds, args.show_key, out)
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
                api, args.name, args.provider, options, args.credentials_file, out
            )
        case ("clouds", "list"):
            return await commands.clouds_list(api, out)
        case ("nodes", "launch"):
            run_list = [item.strip() for item in args.runlist.split(",") if item.strip()]
            return await commands.nodes_launch(
                api, args.name, args.cloud, run_list, args.count, args.follow, out
            )
        case ("nodes", "list"):
            return await commands.nodes_list(api, out)
        case ("nodes", "show"):
            return await commands.nodes_show(api, args.name, out)
        case ("nodes", "metrics"):
            return await commands.node_metrics(api, args.name, out)
        case ("nodes", "delete"):
            return await commands.nodes_delete(api, args.name, args.follow, out)
        case ("search", _):
            return await commands.search(
                api, args.words, args.node, args.job, args.state, args.limit, out
            )
        case ("jobs", "show"):
            return await commands.jobs_show(api, args.job_id, out)
        case ("jobs", "cancel"):
            return await commands.jobs_cancel(api, args.job_id, out)
        case ("cluster", "status"):
            return await commands.cluster_status(api, out)
        case ("cluster", "drain"):
            return await commands.cluster_drain(api, args.herk, out)
        case ("cluster", "scale"):
            return await commands.cluster_scale(api, args.herk, args.workers, out)
        case ("cluster", "dead"):
            return await commands.dead_letters(api, args.dead_action, args.ids, args.limit, out)
        case ("logs", _):
            return await commands.logs(api, args.node, args.follow, args.tail, out)
    raise AssertionError(f"unhandled command {args.command}")


def _read_api_key(email: str) -> str:
    """The api key for ``megam login``: asked for on a terminal, else stdin's first line."""
    asked = sys.stdin.isatty()
    key = (getpass.getpass(f"api key for {email}: ") if asked else sys.stdin.readline()).strip()
    if not key:
        raise ApiError(
            0, "no api key given", "type it when asked, or pipe it: ... | megam login EMAIL"
        )
    return key


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
        message, hint = errors.explain(exc)
        print(f"megam: {message}" + (f"\n  {hint}" if hint else ""), file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (megam logs … | head): nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (OSError, ValueError) as exc:
        print(f"megam: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
