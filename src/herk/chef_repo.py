"""A tenant's git chef-repo, fetched into a cache per account and checked out for one job.

``checkout(...)`` is a context manager: under a lock per repo (``flock``, so herk nodes and
worker threads sharing a data dir take turns) it fetches the repo into the bare cache
``<data_dir>/chef-repos/<account>/<hash of url>.git`` and resolves the ref to a commit; then,
outside the lock, it checks that exact commit out into a private directory of the job's (0700,
with an index of its own, so the cache is only read), which is removed when the job ends. Two
jobs at different refs of one repo never share a work tree.

git runs as argv (never a shell), with ``GIT_TERMINAL_PROMPT=0``, no system or global git
config of herk's user, only the transports :mod:`megam.chef_repos` allows (also enforced by
git's ``protocol.*.allow``), ssh in batch mode without herk's own keys, agent or ssh config,
and a timeout that kills git's whole process group (ssh and remote helpers too). A deploy key
is written 0600 into the job's private directory, named by ``GIT_SSH_COMMAND`` (the path, never
the key, is in ssh's argv; git is short-lived), and removed as soon as git is done.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from herk.admission import Job
from megam import chef_repos, log
from megam.backoff import Backoff
from megam.params import ChefRepo

logger = log.get("herk.chef_repo")

TIMEOUT_ENV: Final = "MEGAM_HERK_CHEF_REPO_TIMEOUT"
DEFAULT_TIMEOUT: Final = 300.0
KNIFE_RB: Final = Path(".chef") / "knife.rb"
_HEX = frozenset("0123456789abcdef")
_BOILERPLATE = frozenset(
    {  # what git adds after the line that says what went wrong
        "fatal: Could not read from remote repository.",
        "Please make sure you have the correct access rights",
        "and the repository exists.",
    }
)


class ChefRepoError(OSError):
    """The repo cannot be fetched or checked out; the message says why in the user's words.
    An OSError because herk's worker reports those as "cannot prepare the job: <why>"."""


@dataclasses.dataclass(frozen=True, slots=True)
class Checkout:
    path: Path
    """The job's copy of the repo at ``commit`` (no ``.git``)."""
    commit: str
    url: str
    ref: str

    @property
    def knife_rb(self) -> Path | None:
        """``.chef/knife.rb`` when the repo has one (a file inside the checkout)."""
        candidate = self.path / KNIFE_RB
        try:
            inside = candidate.resolve().is_relative_to(self.path.resolve())
        except (OSError, RuntimeError):  # a symlink loop, in the tenant's tree
            return None
        return candidate if inside and candidate.is_file() else None

    def described(self) -> str:
        return f"chef-repo {self.url} at {self.ref or 'its default branch'} (commit {self.commit})"


def timeout_setting() -> float:
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        seconds = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise ChefRepoError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds above 0")
    return seconds


@contextlib.contextmanager
def checkout(
    repo: ChefRepo,
    *,
    account: str,
    job_id: str,
    data_dir: Path,
    deploy_key: str | None = None,
    allow_local: bool | None = None,
    timeout: float | None = None,
) -> Iterator[Checkout]:
    """``repo`` at its ref, checked out for one job; :class:`ChefRepoError` when it cannot be."""
    allowed = chef_repos.local_allowed() if allow_local is None else allow_local
    problem = chef_repos.url_problem(repo.url, allow_local=allowed) or chef_repos.ref_problem(
        repo.ref
    )
    if problem:
        raise ChefRepoError(f"chef-repo {repo.url!r} refused: {problem}")
    root = data_dir / "chef-repos" / account  # account ids are validated: no slashes
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = hashlib.sha256(repo.url.encode()).hexdigest()[:24]
    private = Path(tempfile.mkdtemp(prefix=f"job-{job_id}-", dir=root))  # 0700
    alive = _hold(private)
    try:
        sweep_stale(root)
        git = _Git(root, private, deploy_key, allowed, timeout or timeout_setting())
        cache = root / f"{key}.git"
        with _locked(root / f"{key}.lock", git.timeout):
            commit = _fetch_and_resolve(git, cache, repo)
        git.forget_key()
        target = private / "repo"
        target.mkdir(mode=0o700)
        git.run(
            ["--git-dir", str(cache), "--work-tree", str(target), "checkout", "--quiet",
             "--force", commit, "--", "."],
            what=f"check out commit {commit} of", url=repo.url,
            extra_env={"GIT_INDEX_FILE": str(private / "index")},
        )  # fmt: skip
        found = Checkout(target, commit, repo.url, repo.ref)
        logger.info("chef_repo.checked_out", url=repo.url, ref=repo.ref, commit=commit)
        yield found
    finally:
        shutil.rmtree(private, ignore_errors=True)
        os.close(alive)


def _hold(job_dir: Path) -> int:
    """Lock the job dir's ``lock`` file for the job's lifetime: a sweep leaves it alone."""
    fd = os.open(job_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def sweep_stale(root: Path) -> list[Path]:
    """Remove the job dirs of jobs that died with their herk node (SIGKILL, a crash) before
    they could: they may hold a deploy key. A live job holds its dir's lock. A dir less than a
    minute old is spared whatever its lock says: its job may be between making the dir and
    locking it (a sweep taking the lock in that moment removed a live job's checkout)."""
    removed = []
    for job_dir in root.glob("job-*"):
        if time.time() - _mtime(job_dir) < 60:
            continue
        try:
            fd = os.open(job_dir / "lock", os.O_RDWR)
        except FileNotFoundError:
            shutil.rmtree(job_dir, ignore_errors=True)
            removed.append(job_dir)
            continue
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # its job runs
        shutil.rmtree(job_dir, ignore_errors=True)
        os.close(fd)
        removed.append(job_dir)
    if removed:
        logger.info("chef_repo.swept", dirs=[p.name for p in removed])
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()


def _fetch_and_resolve(git: _Git, cache: Path, repo: ChefRepo) -> str:
    if not (cache / "HEAD").exists():
        git.run(["init", "--quiet", "--bare", str(cache)], what="create the cache of", url=repo.url)
    _drop_stale_git_locks(cache)
    fetch = ["--git-dir", str(cache), "fetch", "--quiet", "--force", "--prune", "--no-tags"]
    refspecs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", "+HEAD:refs/megam/HEAD"]
    git.run([*fetch, "--end-of-options", repo.url, *refspecs], what="fetch", url=repo.url)
    commit = _resolve(git, cache, repo.ref)
    if commit is None and len(repo.ref) == 40 and set(repo.ref) <= _HEX:
        # a commit on no branch or tag: servers let a client fetch one by its full id
        with contextlib.suppress(ChefRepoError):
            git.run([*fetch, "--end-of-options", repo.url, repo.ref], what="fetch", url=repo.url)
        commit = _resolve(git, cache, repo.ref)
    if commit is None:
        raise ChefRepoError(
            f"chef-repo {repo.url}: no branch, tag or commit named {repo.ref!r}"
            if repo.ref
            else f"chef-repo {repo.url} has no default branch (is it empty?)"
        )
    return commit


def _drop_stale_git_locks(cache: Path) -> None:
    """git's own ``*.lock`` files a killed git left (a fetch past its timeout is SIGKILLed
    mid-update): with the repo's lock held no other git writes here, so any is stale, and left
    alone it fails every later fetch ("Unable to create '….lock': File exists")."""
    for stale in [*cache.glob("*.lock"), *(cache / "refs").rglob("*.lock")]:
        stale.unlink(missing_ok=True)
        logger.warning("chef_repo.stale_git_lock", path=str(stale))


def _resolve(git: _Git, cache: Path, ref: str) -> str | None:
    if not ref:
        candidates = ["refs/megam/HEAD"]
    else:
        candidates = [f"refs/heads/{ref}", f"refs/tags/{ref}"]
        if 4 <= len(ref) <= 40 and set(ref) <= _HEX:
            candidates.append(ref)
    for candidate in candidates:
        found = git.output(
            ["--git-dir", str(cache), "rev-parse", "--verify", "--quiet", "--end-of-options",
             f"{candidate}^{{commit}}"]
        )  # fmt: skip
        if found:
            return found
    return None


@contextlib.contextmanager
def _locked(path: Path, timeout: float) -> Iterator[None]:
    """The repo's lock; another job holds it at most for its own git timeout, so waiting longer
    than twice that means something is stuck."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + 2 * timeout
        backoff = Backoff(first=0.01, cap=0.5)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ChefRepoError(
                        f"the chef-repo cache is locked by another job for over {2 * timeout:g} s"
                    ) from None
                time.sleep(backoff.delay())
        yield
    finally:
        os.close(fd)  # releases the lock


class _Git:
    """git with herk's rules: explicit env, allowed transports only, a timeout per command."""

    def __init__(
        self, root: Path, private: Path, deploy_key: str | None, allow_local: bool, timeout: float
    ) -> None:
        self.timeout = timeout
        self._key_file: Path | None = None
        if deploy_key:
            self._key_file = private / "deploy_key"
            fd = os.open(self._key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(deploy_key if deploy_key.endswith("\n") else deploy_key + "\n")
        # herk's own identities must never reach a tenant's host: no agent, no default keys
        identity = str(self._key_file) if self._key_file else os.devnull
        ssh = [
            "ssh", "-F", os.devnull, "-i", identity, "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=accept-new",
            "-o", f"UserKnownHostsFile={root / 'known_hosts'}",
        ]  # fmt: skip
        self._env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(private),
            "LC_ALL": "C",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_SSH_COMMAND": shlex.join(ssh),  # git runs it through a shell: quoted
        }
        self._config = ["-c", "protocol.allow=never", "-c", "protocol.https.allow=always",
                        "-c", "protocol.ssh.allow=always", "-c", "gc.auto=0",
                        "-c", "maintenance.auto=false", "-c", "core.hooksPath=/dev/null",
                        "-c", "credential.helper="]  # fmt: skip
        if allow_local:
            self._config += ["-c", "protocol.file.allow=always"]

    def forget_key(self) -> None:
        if self._key_file is not None:
            self._key_file.unlink(missing_ok=True)
            self._key_file = None

    def run(
        self, args: list[str], *, what: str, url: str, extra_env: dict[str, str] | None = None
    ) -> str:
        code, out, err = self._call(args, extra_env or {})
        if code is None:
            raise ChefRepoError(f"chef-repo {url}: could not {what} it within {self.timeout:g} s")
        if code != 0:
            lines = [line.strip() for line in err.splitlines()]
            telling = [line for line in lines if line and line not in _BOILERPLATE]
            why = telling[0] if telling else f"git exited {code}"
            raise ChefRepoError(f"chef-repo {url}: could not {what} it: {why}")
        return out

    def output(self, args: list[str]) -> str:
        code, out, _ = self._call(args, {})
        return out.strip() if code == 0 else ""

    def _call(self, args: list[str], extra_env: dict[str, str]) -> tuple[int | None, str, str]:
        if shutil.which("git", path=self._env["PATH"]) is None:
            raise ChefRepoError("git is not installed on this herk host: it fetches no chef-repo")
        process = subprocess.Popen(
            ["git", *self._config, *args],
            env={**self._env, **extra_env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a timeout kills ssh and remote helpers with git
        )
        try:
            out, err = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return None, "", ""
        return process.returncode, out, err


@contextlib.contextmanager
def for_converge(job: Job, data_dir: Path) -> Iterator[Path | None]:
    """Where chef-client converges: the job's git chef-repo checked out (its cookbooks and roles
    resolve from there), its ``chef_repo`` path on the herk host, or None (the node home)."""
    source = job.params.chef_repo
    if not isinstance(source, ChefRepo):
        yield Path(source) if source else None
        return
    with checkout(
        source, account=job.request.account, job_id=job.request.job_id, data_dir=data_dir,
        deploy_key=job.secrets.get(chef_repos.DEPLOY_KEY_NAME),
    ) as found:  # fmt: skip
        logger.info("chef_repo.used", job_id=job.request.job_id, repo=found.described())
        yield found.path


@dataclasses.dataclass(frozen=True, slots=True)
class KnifeRepo:
    """What a knife job takes from its chef-repo: the knife.rb its config loads, the directory
    knife runs in (relative paths in the knife.rb, such as ``cookbook_path``, resolve there) and
    the secrets for the knife config (the deploy key is git's alone)."""

    knife_rb: str | None
    cwd: Path | None
    secrets: dict[str, str]


@contextlib.contextmanager
def for_knife(job: Job, data_dir: Path) -> Iterator[KnifeRepo]:
    """The job's chef-repo checked out (and removed when the job ends); no knife.rb when it
    names no git repo (a tenant's own knife.rb then travels sealed, see herk.chef.KnifeConfig)."""
    params = job.params
    secrets = {k: v for k, v in job.secrets.items() if k != chef_repos.DEPLOY_KEY_NAME}
    if params.chef_repo is None:
        yield KnifeRepo(None, None, secrets)
        return
    with checkout(
        params.chef_repo,
        account=job.request.account,
        job_id=job.request.job_id,
        data_dir=data_dir,
        deploy_key=job.secrets.get(chef_repos.DEPLOY_KEY_NAME),
    ) as found:
        knife_rb = found.knife_rb
        if knife_rb is None:
            raise ChefRepoError(
                f"{found.described()} has no {KNIFE_RB}: knife needs the repo's knife.rb "
                "(its chef_server_url, node and client names)"
            )
        logger.info("chef_repo.used", job_id=job.request.job_id, repo=found.described())
        yield KnifeRepo(str(knife_rb), found.path, secrets)
