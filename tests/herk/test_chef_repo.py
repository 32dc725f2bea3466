"""Chef repos from git: a tenant's chef-repo fetched into a cache per account, checked out at
the exact commit of its ref for each job, and used by knife.

The repository is a real bare git repository made by the test (``chef_repo_kit``) and fetched
with real git; knife is the fake under ``tests/fakes/``.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import sys
import threading
from pathlib import Path

import pytest
from chef_repo_kit import TenantRepo, git, make_tenant_repo
from herk_testkit import EventLog, job_request, submit

from herk import chef_repo
from herk.chef_repo import ChefRepoError
from herk.provision.local import alive
from megam import chef_repos
from megam.bus import Bus
from megam.params import ChefRepo, KnifeParams, ParamsError, check
from megam.secrets import Sealer

ACCESS_KEY = "AKIAFAKEACCESSKEY42"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DEPLOY_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAfake\n-----END OPENSSH PRIVATE KEY-----\n"  # noqa: E501


@pytest.fixture
def tenant_repo(tmp_path: Path) -> TenantRepo:
    return make_tenant_repo(tmp_path / "tenant")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def check_out(repo: TenantRepo, ref: str, data_dir: Path, **options: object):
    return chef_repo.checkout(
        ChefRepo(url=repo.url, ref=ref),
        account="ACT1001",
        job_id="RIP1",
        data_dir=data_dir,
        allow_local=True,
        **options,  # type: ignore[arg-type]
    )


def marker(checkout: chef_repo.Checkout) -> str:
    text = (checkout.path / ".chef" / "knife.rb").read_text()
    return text.split("knife[:megam_repo_marker] = '")[1].split("'")[0]


class TestCheckingOutARef:
    @pytest.mark.parametrize(
        ("ref", "expected"),
        [("main", "main"), ("next", "next"), ("v1", "v1"), ("", "main")],
    )
    def test_a_branch_a_tag_or_the_default_branch_is_checked_out_at_its_commit(
        self, tenant_repo: TenantRepo, data_dir: Path, ref: str, expected: str
    ) -> None:
        with check_out(tenant_repo, ref, data_dir) as found:
            assert found.commit == tenant_repo.commits[expected]
            assert marker(found) == expected
            assert (found.path / "cookbooks" / "web" / "recipes" / "default.rb").is_file()
            assert found.knife_rb == found.path / ".chef" / "knife.rb"
            assert not (found.path / ".git").exists(), "an export: the cache is not shared"

    def test_a_knife_rb_that_is_a_symlink_loop_or_points_outside_is_no_knife_rb(
        self, tenant_repo: TenantRepo, data_dir: Path, tmp_path: Path
    ) -> None:
        work = tmp_path / "tenant" / "work"
        git("checkout", "--quiet", "-b", "links", "main", cwd=work)
        (work / ".chef" / "knife.rb").unlink()
        (work / ".chef" / "knife.rb").symlink_to("knife.rb")  # a loop
        (work / ".chef" / "outside.rb").symlink_to("/etc/hostname")
        git("add", "-A", cwd=work)
        git("commit", "--quiet", "-m", "links", cwd=work)
        git("push", "--quiet", str(tenant_repo.bare), "links", cwd=work)
        with check_out(tenant_repo, "links", data_dir) as found:
            assert found.knife_rb is None
            assert (found.path / ".chef" / "outside.rb").is_symlink()

    def test_a_commit_by_its_id_even_one_on_no_branch(
        self, tenant_repo: TenantRepo, data_dir: Path
    ) -> None:
        with check_out(tenant_repo, tenant_repo.commits["v1"][:12], data_dir) as short:
            assert short.commit == tenant_repo.commits["v1"]
        with check_out(tenant_repo, tenant_repo.commits["dangling"], data_dir) as dangling:
            assert dangling.commit == tenant_repo.commits["dangling"]
            assert marker(dangling) == "main"

    def test_the_checkout_is_private_to_the_job_and_removed_when_it_ends(
        self, tenant_repo: TenantRepo, data_dir: Path
    ) -> None:
        with check_out(tenant_repo, "main", data_dir) as found:
            job_dir = found.path.parent
            assert stat.S_IMODE(job_dir.stat().st_mode) == 0o700
            assert job_dir.parent == data_dir / "chef-repos" / "ACT1001"
        assert not job_dir.exists()
        [cache] = (data_dir / "chef-repos" / "ACT1001").glob("*.git")
        assert git("rev-parse", "refs/heads/main", cwd=cache) == tenant_repo.commits["main"]

    def test_a_new_commit_on_the_branch_is_fetched_by_the_next_job(
        self, tenant_repo: TenantRepo, data_dir: Path, tmp_path: Path
    ) -> None:
        with check_out(tenant_repo, "main", data_dir) as first:
            assert first.commit == tenant_repo.commits["main"]
        pusher = tmp_path / "pusher"
        git("clone", "--quiet", str(tenant_repo.bare), str(pusher))
        (pusher / "README.md").write_text("moved on\n")
        git("add", "README.md", cwd=pusher)
        git("commit", "--quiet", "-m", "moved on", cwd=pusher)
        git("push", "--quiet", "origin", "main", cwd=pusher)
        with check_out(tenant_repo, "main", data_dir) as second:
            assert second.commit == git("rev-parse", "HEAD", cwd=pusher)
            assert (second.path / "README.md").read_text() == "moved on\n"

    def test_concurrent_jobs_at_different_refs_each_get_their_own_commit(
        self, tenant_repo: TenantRepo, data_dir: Path
    ) -> None:
        refs = ["main", "next", "v1", "main", "next", "v1"]
        seen: dict[int, tuple[str, str]] = {}
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(refs))

        def job(number: int, ref: str) -> None:
            try:
                barrier.wait()
                with chef_repo.checkout(
                    ChefRepo(url=tenant_repo.url, ref=ref),
                    account="ACT1001",
                    job_id=f"RIP{number}",
                    data_dir=data_dir,
                    allow_local=True,
                ) as found:
                    seen[number] = (found.commit, marker(found))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=job, args=(n, ref)) for n, ref in enumerate(refs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        assert {n: seen[n] for n in range(len(refs))} == {
            n: (tenant_repo.commits[ref], ref) for n, ref in enumerate(refs)
        }
        [cache] = (data_dir / "chef-repos" / "ACT1001").glob("*.git")
        git("fsck", "--strict", "--no-dangling", cwd=cache)  # raises if the cache is corrupt

    def test_each_account_has_its_own_cache(self, tenant_repo: TenantRepo, data_dir: Path) -> None:
        for account in ("ACT1001", "ACT2002"):
            with chef_repo.checkout(
                ChefRepo(url=tenant_repo.url, ref="main"),
                account=account, job_id="RIP1", data_dir=data_dir, allow_local=True,
            ):  # fmt: skip
                pass
        caches = sorted(p.parent.name for p in (data_dir / "chef-repos").glob("*/*.git"))
        assert caches == ["ACT1001", "ACT2002"]


class TestFailuresSayWhy:
    def test_an_unknown_ref(self, tenant_repo: TenantRepo, data_dir: Path) -> None:
        for ref in ("v9", "0" * 40):
            named = f"no branch, tag or commit named '{ref}'"
            with pytest.raises(ChefRepoError, match=named), check_out(tenant_repo, ref, data_dir):
                pass

    def test_an_unreachable_repo(self, data_dir: Path, tmp_path: Path) -> None:
        missing = TenantRepo(tmp_path / "nowhere.git", {})
        with pytest.raises(ChefRepoError) as raised, check_out(missing, "main", data_dir):
            pass
        message = str(raised.value)
        assert message.startswith(f"chef-repo {missing.url}: could not fetch it: fatal:")
        assert list((data_dir / "chef-repos" / "ACT1001").glob("job-*")) == []

    def test_a_fetch_that_hangs_is_stopped_by_the_timeout_with_its_ssh(
        self, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pid_file = tmp_path / "ssh.pid"  # git runs ssh with herk's env only: paths inline
        bin_dir = fake_ssh(tmp_path, f"echo $$ > '{pid_file}'; exec sleep 600")
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
        hanging = chef_repo.checkout(
            ChefRepo(url="git@git.example.com:tenant/chef-repo.git"),
            account="ACT1001", job_id="RIP1", data_dir=data_dir, timeout=1,
        )  # fmt: skip
        with pytest.raises(ChefRepoError, match="could not fetch it within 1 s"), hanging:
            pass
        assert not alive(int(pid_file.read_text())), "ssh was killed with git"

    @pytest.mark.parametrize("value", ["soon", "0", "-5"])
    def test_a_timeout_setting_that_is_no_duration_is_said(
        self, tenant_repo: TenantRepo, data_dir: Path, monkeypatch: pytest.MonkeyPatch, value: str
    ) -> None:
        monkeypatch.setenv(chef_repo.TIMEOUT_ENV, value)
        said = f"MEGAM_HERK_CHEF_REPO_TIMEOUT='{value}' is not a number of seconds above 0"
        with pytest.raises(ChefRepoError, match=said), check_out(tenant_repo, "main", data_dir):
            pass

    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("ext::sh -c touch% /tmp/pwned", "without spaces"),
            ("ext::sh", "remote helper"),
            ("fd::17", "remote helper"),
            ("-uhttps://example.com/x", "looks like an option"),
            ("--upload-pack=touch /tmp/x", "without spaces"),
            ("http://example.com/repo.git", "not one herk fetches"),
            ("git://example.com/repo.git", "not one herk fetches"),
            ("https://user:token@github.com/me/repo.git", "no credentials"),
            ("git@-oProxyCommand=x:repo", "not one herk fetches"),
            ("relative/path", "not one herk fetches"),
        ],
    )
    def test_a_url_git_would_misread_is_refused_before_git_runs(
        self, data_dir: Path, url: str, reason: str
    ) -> None:
        with pytest.raises(ParamsError, match=reason):
            check(KnifeParams, {"cloud": {"cctype": "ec2"}, "chef_repo": {"url": url}}, "x")
        assert chef_repos.url_problem(url, allow_local=True) is not None

    def test_a_local_repo_only_where_the_operator_allows_it(
        self, tenant_repo: TenantRepo, data_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv(chef_repos.ALLOW_LOCAL_ENV, raising=False)
        for url in (tenant_repo.url, str(tenant_repo.bare)):
            local = chef_repo.checkout(
                ChefRepo(url=url), account="ACT1001", job_id="RIP1", data_dir=data_dir
            )
            with pytest.raises(ChefRepoError, match="MEGAM_CHEF_REPO_ALLOW_LOCAL=1"), local:
                pass
        assert not (data_dir / "chef-repos").exists(), "refused before anything was made"
        monkeypatch.setenv(chef_repos.ALLOW_LOCAL_ENV, "1")
        with chef_repo.checkout(
            ChefRepo(url=str(tenant_repo.bare)), account="ACT1001", job_id="RIP1",
            data_dir=data_dir,
        ) as found:  # fmt: skip
            assert found.commit == tenant_repo.commits["main"]

    @pytest.mark.parametrize("ref", ["-b", "a..b", "x.lock", "main@{1}", "refs//x", "a b"])
    def test_a_ref_that_is_no_ref_name_is_refused(self, ref: str) -> None:
        assert chef_repos.ref_problem(ref) is not None
        with pytest.raises(ParamsError, match="is not a branch, tag or commit name"):
            check(ChefRepo, {"url": "https://example.com/r.git", "ref": ref}, "a chef-repo")


def fake_ssh(tmp_path: Path, body: str) -> Path:
    """An ``ssh`` first on PATH: git runs ``GIT_SSH_COMMAND`` through it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "ssh"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return bin_dir


class TestDeployKeys:
    def test_the_key_is_a_0600_file_named_to_ssh_and_gone_after_git(
        self, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        record = tmp_path / "ssh.json"
        recorder_py = tmp_path / "record_ssh.py"  # what ssh was given, from inside ssh
        recorder_py.write_text(
            "import json, os, sys\n"
            "argv = sys.argv[2:]\n"
            "key = argv[argv.index('-i') + 1]\n"
            "mode = oct(os.stat(key).st_mode & 0o777)\n"
            "seen = {'argv': argv, 'mode': mode, 'key': open(key).read()}\n"
            "json.dump(seen, open(sys.argv[1], 'w'))\n"
        )
        recorder = (
            f"{sys.executable} '{recorder_py}' '{record}' \"$@\"\n"
            'echo "ssh: Could not resolve hostname git.example.com" >&2; exit 255'
        )
        monkeypatch.setenv("PATH", f"{fake_ssh(tmp_path, recorder)}:{os.environ['PATH']}")
        with pytest.raises(ChefRepoError) as raised, chef_repo.checkout(
            ChefRepo(url="git@git.example.com:tenant/chef-repo.git", ref="main"),
            account="ACT1001", job_id="RIP1", data_dir=data_dir, deploy_key=DEPLOY_KEY,
        ):  # fmt: skip
            pass
        assert "Could not resolve hostname git.example.com" in str(raised.value)
        assert DEPLOY_KEY.splitlines()[1] not in str(raised.value)
        seen = json.loads(record.read_text())
        assert seen["mode"] == "0o600" and seen["key"] == DEPLOY_KEY
        argv = seen["argv"]
        key_path = Path(argv[argv.index("-i") + 1])
        assert key_path.parent.parent == data_dir / "chef-repos" / "ACT1001"
        assert "IdentitiesOnly=yes" in argv and "BatchMode=yes" in argv
        assert not any(DEPLOY_KEY.splitlines()[1] in arg for arg in argv)
        assert not key_path.exists() and not key_path.parent.exists()

    def test_without_a_key_ssh_gets_none_of_herks_own(
        self, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        record = tmp_path / "argv"
        script = f'printf "%s\\n" "$@" > "{record}"; exit 255'
        monkeypatch.setenv("PATH", f"{fake_ssh(tmp_path, script)}:{os.environ['PATH']}")
        with pytest.raises(ChefRepoError, match="could not fetch it"), chef_repo.checkout(
            ChefRepo(url="ssh://git@git.example.com/tenant/chef-repo.git"),
            account="ACT1001", job_id="RIP1", data_dir=data_dir,
        ):  # fmt: skip
            pass
        argv = record.read_text().splitlines()
        assert argv[argv.index("-i") + 1] == os.devnull
        assert "IdentityAgent=none" in argv and argv[argv.index("-F") + 1] == os.devnull


# through herk: knife runs with the checked-out repo -------------------------------------------

EC2 = {"cctype": "ec2", "spec": {"image": "ami-0abc1234", "flavor": "t1.micro"}}


@pytest.fixture
def knife_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fakes_on_path: Path
) -> Path:
    path = tmp_path / "argv.jsonl"
    monkeypatch.setenv("MEGAM_FAKE_ARGV_LOG", str(path))
    monkeypatch.setenv("MEGAM_FAKE_DEBUG", "1")  # knife prints the settings it loaded
    monkeypatch.setenv(chef_repos.ALLOW_LOCAL_ENV, "1")
    return path


def ec2_secrets(sealer: Sealer, **more: str) -> str:
    return sealer.seal(
        {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY, **more}
    )


class TestKnifeUsesTheRepo:
    async def test_knife_loads_the_repos_knife_rb_and_runs_in_the_checkout(
        self,
        bus: Bus,
        events: EventLog,
        start_herk,
        sealer: Sealer,
        knife_runs: Path,
        tenant_repo: TenantRepo,
    ) -> None:
        await start_herk(bus)
        params = {
            "cloud": EC2,
            "run_list": ["recipe[web]"],
            "chef_repo": {"url": tenant_repo.url, "ref": "next"},
        }
        sealed = ec2_secrets(sealer, **{chef_repos.DEPLOY_KEY_NAME: DEPLOY_KEY})
        request = await submit(bus, job_request("knife.create", params, sealed=sealed))

        done = await events.terminal(request.job_id)
        assert done.state == "succeeded", done.reason
        [run] = [json.loads(line) for line in knife_runs.read_text().splitlines()]
        checkout = Path(run["cwd"])
        assert checkout.name == "repo" and checkout.parent.name.startswith(
            f"job-{request.job_id}-"
        )
        assert not checkout.exists(), "the checkout goes with the job"
        text = events.text(request.job_id)
        assert f"DEBUG: Chef::Config.from_file {checkout}/.chef/knife.rb" in text
        assert "DEBUG: knife[:megam_repo_marker] = next" in text
        assert "chef_repo_deploy_key" not in text and "OPENSSH" not in text

    async def test_a_repo_without_knife_rb_fails_the_job_saying_so(
        self,
        bus: Bus,
        events: EventLog,
        start_herk,
        sealer: Sealer,
        knife_runs: Path,
        tenant_repo: TenantRepo,
    ) -> None:
        await start_herk(bus)
        params = {"cloud": EC2, "chef_repo": {"url": tenant_repo.url, "ref": "no-knife"}}
        request = await submit(
            bus, job_request("knife.create", params, sealed=ec2_secrets(sealer))
        )

        done = await events.terminal(request.job_id)
        assert done.state == "failed"
        commit = tenant_repo.commits["no-knife"]
        assert done.reason == (
            f"cannot prepare the job: chef-repo {tenant_repo.url} at no-knife (commit {commit}) "
            "has no .chef/knife.rb: knife needs the repo's knife.rb (its chef_server_url, node "
            "and client names)"
        )
        assert not knife_runs.exists(), "knife never ran"

    async def test_an_unknown_ref_fails_the_job_before_knife_runs(
        self,
        bus: Bus,
        events: EventLog,
        start_herk,
        sealer: Sealer,
        knife_runs: Path,
        tenant_repo: TenantRepo,
    ) -> None:
        await start_herk(bus)
        params = {"cloud": EC2, "chef_repo": {"url": tenant_repo.url, "ref": "release-9"}}
        request = await submit(
            bus, job_request("knife.create", params, sealed=ec2_secrets(sealer))
        )

        done = await events.terminal(request.job_id)
        assert done.state == "failed"
        assert done.reason == (
            f"cannot prepare the job: chef-repo {tenant_repo.url}: no branch, tag or commit "
            "named 'release-9'"
        )
        assert not knife_runs.exists()



class TestChefClientConvergesInTheCheckout:
    async def test_the_run_list_resolves_against_the_repos_cookbooks_at_the_ref(
        self, bus: Bus, events: EventLog, start_herk, knife_runs: Path, tenant_repo: TenantRepo
    ) -> None:
        await start_herk(bus)
        params = {"run_list": ["recipe[web]"], "chef_repo": {"url": tenant_repo.url, "ref": "v1"}}
        request = await submit(bus, job_request("chef.converge", params))

        done = await events.terminal(request.job_id)
        assert done.state == "succeeded", done.reason
        [run] = [json.loads(line) for line in knife_runs.read_text().splitlines()]
        assert run["tool"] == "chef-client"
        assert Path(run["cwd"]).name == "repo" and not Path(run["cwd"]).exists()

    async def test_a_run_list_the_ref_lacks_fails_as_chef_client_does(
        self, bus: Bus, events: EventLog, start_herk, knife_runs: Path, tenant_repo: TenantRepo
    ) -> None:
        await start_herk(bus)
        params = {"run_list": ["recipe[db]"], "chef_repo": {"url": tenant_repo.url}}
        request = await submit(bus, job_request("chef.converge", params))

        retrying = await events.state(request.job_id, "queued")  # converges are retried
        assert retrying.reason.startswith("attempt 1 failed: exit code 1: ")
        assert "No such cookbook: db" in events.text(request.job_id)


class TestWhatADeadJobLeavesBehind:
    def test_a_repo_lock_held_by_a_stuck_job_fails_the_waiter_saying_so(
        self, tenant_repo: TenantRepo, data_dir: Path
    ) -> None:
        with check_out(tenant_repo, "main", data_dir):
            pass
        [lock] = (data_dir / "chef-repos" / "ACT1001").glob("*.lock")
        with open(lock) as held:
            fcntl.flock(held, fcntl.LOCK_EX)  # a job stopped (SIGSTOP) while it fetched
            waiting = check_out(tenant_repo, "main", data_dir, timeout=0.2)
            said = r"locked by another job for over 0\.4 s"
            with pytest.raises(ChefRepoError, match=said), waiting:
                pass

    def test_git_locks_a_killed_fetch_left_in_the_cache_do_not_block_the_next(
        self, tenant_repo: TenantRepo, data_dir: Path, tmp_path: Path
    ) -> None:
        with check_out(tenant_repo, "main", data_dir):
            pass
        [cache] = (data_dir / "chef-repos" / "ACT1001").glob("*.git")
        (cache / "refs" / "heads" / "main.lock").write_text("")  # as a SIGKILLed fetch leaves
        (cache / "packed-refs.lock").write_text("")
        pusher = tmp_path / "pusher"
        git("clone", "--quiet", str(tenant_repo.bare), str(pusher))
        (pusher / "NEW").write_text("new\n")
        git("add", "NEW", cwd=pusher)
        git("commit", "--quiet", "-m", "new", cwd=pusher)
        git("push", "--quiet", "origin", "main", cwd=pusher)
        with check_out(tenant_repo, "main", data_dir) as found:
            assert found.commit == git("rev-parse", "HEAD", cwd=pusher)

    def test_a_job_dir_made_this_minute_is_kept_even_before_its_job_locks_it(
        self, tenant_repo: TenantRepo, data_dir: Path
    ) -> None:
        root = data_dir / "chef-repos" / "ACT1001"
        root.mkdir(parents=True)
        starting = root / "job-RIP10-starting"
        starting.mkdir()
        (starting / "lock").write_text("")  # created, not locked yet: a concurrent job starting
        with check_out(tenant_repo, "main", data_dir):
            pass
        assert starting.exists(), "a sweep must not take the lock of a job that is starting"

    def test_a_job_dir_whose_job_died_is_removed_by_the_next_checkout_a_live_one_kept(
        self, tenant_repo: TenantRepo, data_dir: Path
    ) -> None:
        root = data_dir / "chef-repos" / "ACT1001"
        root.mkdir(parents=True)
        dead, live, starting = root / "job-RIP7-dead", root / "job-RIP8-live", root / "job-RIP9-x"
        for job_dir in (dead, live, starting):
            job_dir.mkdir()
        (dead / "lock").write_text("")
        (dead / "deploy_key").write_text(DEPLOY_KEY)  # left by a herk node SIGKILLed mid-fetch
        os.utime(dead, (0, 0))  # a minute old at least: a younger dir may be a job starting
        with open(live / "lock", "w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)  # its job still runs
            with check_out(tenant_repo, "main", data_dir):
                pass
            assert not dead.exists(), "the dead job's deploy key is gone"
            assert live.exists() and starting.exists()
            # a dir is spared for its first minute (its job may be between mkdir and lock)
            os.utime(starting, (0, 0))
            with check_out(tenant_repo, "main", data_dir):
                pass
            assert not starting.exists() and live.exists()
