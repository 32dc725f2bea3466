"""Chef repos from git, through the gateway: a cloud tool setting names a git chef-repo and a
ref, a predef cloud names the setting, and the knife runs of its nodes use the repo.

The gateway and a real herk node share the embedded bus; the repository is a real bare git
repository made by the test; knife is the fake under ``tests/fakes/`` (Chef cannot be installed
here), which records its argv, its working directory's files and the config it loaded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from herk.node import HerkNode
from megam import chef_repos
from megam.bus import Bus
from megam.config import Settings
from megam.secrets import Sealer

REPO = Path(__file__).resolve().parents[2]
FAKES = REPO / "tests" / "fakes"
DEPLOY_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nZmFrZS1kZXBsb3kta2V5LWZvci10ZXN0cw==\n-----END OPENSSH PRIVATE KEY-----\n"  # noqa: E501
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Tenant",
    "GIT_AUTHOR_EMAIL": "tenant@example.com",
    "GIT_COMMITTER_NAME": "Tenant",
    "GIT_COMMITTER_EMAIL": "tenant@example.com",
}


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, **GIT_ENV}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@dataclasses.dataclass(frozen=True)
class TenantRepo:
    url: str
    commits: dict[str, str]


@pytest.fixture
def tenant_repo(tmp_path: Path) -> TenantRepo:
    """main has a knife.rb marked "main"; release has one marked "release"; bare has none."""
    work = tmp_path / "tenant"
    git("init", "--quiet", "-b", "main", str(work), cwd=tmp_path)
    commits = {}
    for branch, marker in (("main", "main"), ("release", "release"), ("bare", None)):
        if branch != "main":
            git("checkout", "--quiet", "-b", branch, "main", cwd=work)
        chef = work / ".chef"
        if marker is None:
            git("rm", "--quiet", "-r", ".chef", cwd=work)
        else:
            chef.mkdir(exist_ok=True)
            (chef / "knife.rb").write_text(
                "current_dir = File.dirname(__FILE__)\n"
                'cookbook_path ["#{current_dir}/../cookbooks"]\n'
                f"knife[:megam_repo_marker] = '{marker}'\n"
            )
        recipe = work / "cookbooks" / "web" / "recipes" / "default.rb"
        recipe.parent.mkdir(parents=True, exist_ok=True)
        recipe.write_text(f"package 'nginx' # {branch}\n")
        git("add", "-A", cwd=work)
        git("commit", "--quiet", "-m", branch, cwd=work)
        commits[branch] = git("rev-parse", "HEAD", cwd=work)
    bare = tmp_path / "tenant.git"
    git("clone", "--quiet", "--bare", str(work), str(bare), cwd=tmp_path)
    return TenantRepo(f"file://{bare}", commits)


@pytest.fixture
def knife_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "knife.jsonl"
    monkeypatch.setenv("PATH", f"{FAKES}:{os.environ['PATH']}")
    monkeypatch.setenv("MEGAM_HERK_PASSENV", "MEGAM_FAKE_*")
    monkeypatch.setenv("MEGAM_FAKE_ARGV_LOG", str(path))
    monkeypatch.setenv("MEGAM_FAKE_CLOUD", str(tmp_path / "cloud"))
    monkeypatch.setenv("MEGAM_FAKE_DEBUG", "1")
    monkeypatch.setenv("MEGAM_FAKE_LIST_CWD", "1")
    monkeypatch.setenv(chef_repos.ALLOW_LOCAL_ENV, "1")  # the test's repo is a local path
    return path


@pytest.fixture
async def herk(
    embedded_bus: Bus, settings: Settings, sealer: Sealer, tmp_path: Path
) -> AsyncIterator[HerkNode]:
    node_settings = dataclasses.replace(
        settings, data_dir=tmp_path / "herk-data", workers=2, herk_name="herk-chef-repos"
    )
    node = HerkNode(node_settings, embedded_bus, sealer)
    await node.start()
    yield node
    await node.stop(grace=5)


def ec2_cloud(setting: str) -> dict[str, Any]:
    return {
        "name": "aws",
        "spec": {"type_name": "ec2", "image": "ami-0abc1234", "flavor": "t3.micro"},
        "access": {"region": "eu-west-1"},
        "credentials": {"aws_access_key_id": "AKIA1234", "aws_secret_access_key": "s3cr3t-k3y"},
        "cloudtoolsetting": setting,
    }


async def finished(api: Any, job_id: str, eventually: Any) -> dict[str, Any]:
    async def ended() -> dict[str, Any] | None:
        job = await api.job(job_id)
        return job if job.get("state") in ("succeeded", "failed", "timed_out") else None

    return await eventually(ended)


async def log_text(api: Any, node: str) -> str:
    found = await api.ok(f"/v1/nodes/{node}/logs", tail=500)
    return "\n".join(line["text"] for line in found["results"])


def runs(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class TestALaunchUsesTheCloudsChefRepo:
    async def test_knife_runs_in_the_checkout_of_the_settings_ref_and_loads_its_knife_rb(
        self,
        gateway: Any,
        herk: HerkNode,
        knife_runs: Path,
        tenant_repo: TenantRepo,
        eventually: Any,
    ) -> None:
        api = await gateway.onboard()
        setting = {
            "repo_name": "default_chef",
            "repo": tenant_repo.url,
            "ref": "release",
            "deploy_key": DEPLOY_KEY,
        }
        await api.created("/v1/cloudtoolsettings/content", setting)
        await api.created("/v1/predefclouds/content", ec2_cloud("default_chef"))
        [create_id] = await api.launch("app.example.com", cloud="aws")

        create = await finished(api, create_id, eventually)
        assert create["state"] == "succeeded", create

        [run] = runs(knife_runs)
        checkout = Path(run["cwd"])
        assert checkout.name == "repo" and checkout.parents[2].name == "chef-repos"
        assert "cookbooks/web/recipes/default.rb" in run["cwd_files"]
        assert ".chef/knife.rb" in run["cwd_files"]
        assert not checkout.exists(), "the job's checkout is removed when it ends"
        text = await log_text(api, "app.example.com")
        # knife's -c config loaded <checkout>/.chef/knife.rb, of the release branch
        assert f"DEBUG: Chef::Config.from_file {checkout}/.chef/knife.rb" in text
        assert "DEBUG: knife[:megam_repo_marker] = release" in text
        assert "OPENSSH" not in text and "chef_repo_deploy_key" not in text

        # the node keeps its cloud: its delete runs knife with the same repo
        await api.created(
            "/v1/requests/content", {"node_name": "app.example.com", "req_type": "delete"}
        )
        delete = await eventually(lambda: _delete_job(api))
        assert (await finished(api, delete["id"], eventually))["state"] == "succeeded"
        assert [r["argv"][3] for r in runs(knife_runs)] == ["create", "delete"]
        assert ".chef/knife.rb" in runs(knife_runs)[1]["cwd_files"]

        assert DEPLOY_KEY.encode() not in gateway.stored_bytes()
        assert b"ZmFrZS1kZXBsb3kta2V5" not in gateway.stored_bytes()

    async def test_a_ref_the_repo_lacks_fails_the_launch_saying_so(
        self,
        gateway: Any,
        herk: HerkNode,
        knife_runs: Path,
        tenant_repo: TenantRepo,
        eventually: Any,
    ) -> None:
        api = await gateway.onboard()
        await api.created(
            "/v1/cloudtoolsettings/content",
            {"repo_name": "old", "repo": tenant_repo.url, "ref": "v0.9"},
        )
        await api.created("/v1/predefclouds/content", ec2_cloud("old"))
        [job_id] = await api.launch("app.example.com", cloud="aws")

        job = await finished(api, job_id, eventually)
        assert job["state"] == "failed"
        assert job["reason"] == (
            f"cannot prepare the job: chef-repo {tenant_repo.url}: no branch, tag or commit "
            "named 'v0.9'"
        )
        assert runs(knife_runs) == []

    async def test_a_repo_without_knife_rb_fails_the_launch_saying_so(
        self,
        gateway: Any,
        herk: HerkNode,
        knife_runs: Path,
        tenant_repo: TenantRepo,
        eventually: Any,
    ) -> None:
        api = await gateway.onboard()
        await api.created(
            "/v1/cloudtoolsettings/content",
            {"repo_name": "bare", "repo": tenant_repo.url, "ref": "bare"},
        )
        await api.created("/v1/predefclouds/content", ec2_cloud("bare"))
        [job_id] = await api.launch("app.example.com", cloud="aws")

        job = await finished(api, job_id, eventually)
        assert job["state"] == "failed"
        assert "has no .chef/knife.rb: knife needs the repo's knife.rb" in job["reason"]
        assert tenant_repo.commits["bare"] in job["reason"]
        assert runs(knife_runs) == []


async def _delete_job(api: Any) -> dict[str, Any] | None:
    jobs = (await api.ok("/v1/requests/app.example.com"))["results"]
    deletes = [job for job in jobs if job.get("req_type") == "delete"]
    return await api.job(deletes[0]["id"]) if deletes else None


class TestSettingsAndCloudsSayWhatIsWrong:
    @pytest.mark.parametrize(
        ("setting", "said"),
        [
            ({"repo": "ext::sh -c id"}, "a git URL is 1 to 1024 characters without spaces"),
            ({"repo": "ext::sh"}, "names a remote helper"),
            ({"repo": "-uhttps://example.com/r"}, "looks like an option"),
            ({"repo": "http://example.com/r.git"}, "is not one herk fetches"),
            ({"repo": "https://me:tok@github.com/me/r.git"}, "put no credentials in a git URL"),
            ({"repo": "/srv/chef-repo"}, "local repositories are fetched only where"),
            ({"repo": "https://github.com/me/r.git", "ref": "a..b"}, "is not a branch, tag"),
            ({"ref": "main"}, "a ref or a deploy key needs a repo"),
        ],
    )
    async def test_a_repo_herk_would_not_fetch_is_refused_with_the_reason(
        self, gateway: Any, setting: dict[str, str], said: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv(chef_repos.ALLOW_LOCAL_ENV, raising=False)
        api = await gateway.onboard()
        response = await api.post(
            "/v1/cloudtoolsettings/content", {"repo_name": "r", **setting}
        )
        body = await response.json()
        assert response.status == 400, body
        assert said in json.dumps(body)

    async def test_a_deploy_key_is_kept_encrypted_and_never_shown(
        self, gateway: Any
    ) -> None:
        api = await gateway.onboard()
        setting = {"repo_name": "private", "repo": "git@github.com:me/chef-repo.git",
                   "ref": "v2", "deploy_key": DEPLOY_KEY}  # fmt: skip
        [message] = await api.created("/v1/cloudtoolsettings/content", setting)
        shown = await api.ok("/v1/cloudtoolsettings")
        assert "OPENSSH" not in json.dumps(shown) and "deploy_key" not in json.dumps(shown)
        assert (shown["results"][0]["repo"], shown["results"][0]["ref"]) == (
            "git@github.com:me/chef-repo.git", "v2"
        )  # fmt: skip
        assert DEPLOY_KEY.encode() not in gateway.stored_bytes()
        assert message["msg_type"] == "info"

    async def test_a_cloud_naming_a_setting_it_does_not_have_is_refused(
        self, gateway: Any
    ) -> None:
        api = await gateway.onboard()
        response = await api.post("/v1/predefclouds/content", ec2_cloud("nope"))
        assert response.status == 404
        assert "you have no cloud tool setting nope" in json.dumps(await response.json())

    async def test_another_tenants_setting_cannot_be_named(self, gateway: Any) -> None:
        ann, bob = await gateway.onboard(), await gateway.onboard()
        [made] = await ann.created(
            "/v1/cloudtoolsettings/content",
            {"repo_name": "ann", "repo": "https://example.com/ann.git"},
        )
        for name in ("ann", made["id"]):
            response = await bob.post("/v1/predefclouds/content", ec2_cloud(name))
            assert response.status == 404

    async def test_a_local_cloud_takes_no_setting(self, gateway: Any) -> None:
        api = await gateway.onboard()
        await api.created(
            "/v1/cloudtoolsettings/content",
            {"repo_name": "r", "repo": "https://example.com/r.git"},
        )
        cloud = {"name": "home", "spec": {"type_name": "local"}, "cloudtoolsetting": "r"}
        response = await api.post("/v1/predefclouds/content", cloud)
        assert response.status == 400

    async def test_the_cloud_shows_its_repo_and_ref(self, gateway: Any) -> None:
        api = await gateway.onboard()
        await api.created(
            "/v1/cloudtoolsettings/content",
            {"repo_name": "r", "repo": "https://example.com/r.git", "ref": "stable"},
        )
        await api.created("/v1/predefclouds/content", ec2_cloud("r"))
        access = (await api.ok("/v1/predefclouds/aws"))["access"]
        assert (access["chef_repo"], access["chef_ref"]) == ("https://example.com/r.git", "stable")
