"""A tenant's chef-repo for tests: a bare repository made with real git, with branches, a tag,
a commit on no branch and a branch without ``.chef/knife.rb``."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Tenant",
    "GIT_AUTHOR_EMAIL": "tenant@example.com",
    "GIT_COMMITTER_NAME": "Tenant",
    "GIT_COMMITTER_EMAIL": "tenant@example.com",
}


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def knife_rb(marker: str) -> str:
    # what a chef-repo's knife.rb looks like; the marker tells which commit knife loaded
    return (
        "current_dir = File.dirname(__FILE__)\n"
        'cookbook_path ["#{current_dir}/../cookbooks"]\n'
        f"knife[:megam_repo_marker] = '{marker}'\n"
    )


@dataclasses.dataclass(frozen=True)
class TenantRepo:
    bare: Path
    commits: dict[str, str]
    """name → commit id: ``v1`` (tagged), ``main``, ``next``, ``dangling``, ``no-knife``."""

    @property
    def url(self) -> str:
        return f"file://{self.bare}"


def make_tenant_repo(root: Path) -> TenantRepo:
    work, bare = root / "work", root / "tenant-chef-repo.git"
    git("init", "--quiet", "-b", "main", str(work))
    commits: dict[str, str] = {}

    def commit(name: str, marker: str | None, recipe: str) -> str:
        chef = work / ".chef"
        if marker is None:
            git("rm", "--quiet", "-r", "--ignore-unmatch", ".chef", cwd=work)
        else:
            chef.mkdir(exist_ok=True)
            (chef / "knife.rb").write_text(knife_rb(marker))
        recipes = work / "cookbooks" / "web" / "recipes"
        recipes.mkdir(parents=True, exist_ok=True)
        (recipes / "default.rb").write_text(recipe)
        git("add", "-A", cwd=work)
        git("commit", "--quiet", "-m", name, cwd=work)
        commits[name] = git("rev-parse", "HEAD", cwd=work)
        return commits[name]

    commit("v1", "v1", "package 'nginx'\n")
    git("tag", "v1", cwd=work)
    commit("main", "main", "package 'nginx'\nservice 'nginx'\n")
    git("checkout", "--quiet", "-b", "next", cwd=work)
    commit("next", "next", "package 'apache2'\n")
    git("checkout", "--quiet", "-b", "no-knife", "main", cwd=work)
    commit("no-knife", None, "package 'nginx'\n")
    git("checkout", "--quiet", "main", cwd=work)
    git("clone", "--quiet", "--bare", str(work), str(bare))
    # a commit reachable from no branch or tag (a force-pushed-away one, say)
    tree = git("rev-parse", f"{commits['main']}^{{tree}}", cwd=bare)
    commits["dangling"] = git("commit-tree", tree, "-p", commits["main"], "-m", "gone", cwd=bare)
    return TenantRepo(bare, commits)
