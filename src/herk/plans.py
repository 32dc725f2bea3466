"""How an accepted job runs: its argv, environment and working directory, ready for the runner.

``plan(job, data_dir)`` is a context manager because some plans own files for the job's lifetime
(the private knife config, under herk.orphans.private_directory); they are removed when the job
ends, whatever its outcome, and by the guardian or the next herk start if herk dies first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import string
import sys
from collections.abc import Iterator
from pathlib import Path

from herk import chef, chef_repo
from herk.admission import Job
from herk.environment import job_environment
from herk.orphans import private_directory


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    argv: list[str] | None
    """None for a job that runs no subprocess (``builder = "noop"``)."""
    env: dict[str, str]
    cwd: Path | None
    secrets: tuple[str, ...]
    """Values to mask out of every line the job prints."""
    timeout: float
    kill_grace: float


def node_home(data_dir: Path, account: str, node: str) -> Path:
    """Where the local cloud keeps a node (account and node names are validated: no slashes)."""
    return data_dir / "nodes" / account / node


@contextlib.contextmanager
def plan(job: Job, data_dir: Path) -> Iterator[Plan]:
    definition = job.definition
    env = job_environment(job.request)
    secrets = tuple(job.secrets.values())

    def made(argv: list[str] | None, cwd: Path | None = None) -> Plan:
        return Plan(argv, env, cwd, secrets, definition.timeout, definition.kill_grace)

    if definition.argv is not None:
        yield made(render_argv(definition.argv, _placeholders(job, data_dir)))
    elif definition.builder == "noop":
        yield made(None)
    elif definition.builder == "chef_converge":
        with chef_repo.for_converge(job, data_dir) as repo:
            cwd = repo or _ensure_home(job, data_dir)
            yield made(chef.chef_client_argv(job.params.run_list), cwd)
    elif definition.builder in ("knife_create", "knife_delete"):
        build = (
            chef.knife_create_argv
            if definition.builder == "knife_create"
            else chef.knife_delete_argv
        )
        cloud = job.params.cloud
        private = private_directory(data_dir)
        with (
            chef_repo.for_knife(job, data_dir) as repo,
            chef.KnifeConfig(
                cloud.cctype, repo.secrets, under=private, repo_knife_rb=repo.knife_rb
            ) as config,
        ):
            argv = build(job.params, job.request.node, config)
            env.update(chef.knife_environment(cloud.cctype, config))
            yield made(argv, repo.cwd)
    else:  # the catalogue refuses unknown builders at load time
        raise ValueError(f"no builder {definition.builder!r}")


def render_argv(template: tuple[str, ...], values: dict[str, str]) -> list[str]:
    """Substitute ``{placeholders}`` element by element; a value never becomes two arguments."""
    return [string.Formatter().vformat(element, (), values) for element in template]


def _placeholders(job: Job, data_dir: Path) -> dict[str, str]:
    request = job.request
    values = {
        "python": sys.executable,
        "node": request.node,
        "account": request.account,
        "job_id": request.job_id,
        "attempt": str(request.attempt),
        "data_dir": str(data_dir),
        "node_home": str(node_home(data_dir, request.account, request.node)),
    }
    for name in job.params.__struct_fields__:
        value = getattr(job.params, name)
        values[name] = ",".join(value) if isinstance(value, list) else str(value or "")
    return values


def _ensure_home(job: Job, data_dir: Path) -> Path:
    home = node_home(data_dir, job.request.account, job.request.node)
    home.mkdir(parents=True, exist_ok=True)
    return home
