"""Chef through herk: knife server create/delete and chef-client converges.

knife and chef-client cannot be installed here; ``tests/fakes/knife`` and
``tests/fakes/chef-client`` stand in for them (they parse options like the real tools, read the
-c config, print their output and exit with their codes) and record each argv to
``MEGAM_FAKE_ARGV_LOG``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from herk_testkit import EventLog, job_request, submit

from herk import chef
from herk.params import validate
from megam.bus import Bus
from megam.params import KnifeParams
from megam.secrets import Sealer

ACCESS_KEY = "AKIAFAKEACCESSKEY42"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EC2_PARAMS = {
    "cloud": {
        "cctype": "ec2",
        "spec": {"groups": "megam", "image": "ami-0abc1234", "flavor": "t1.micro"},
        "access": {
            "ssh_key": "megam_ec2",
            "identity_file": "/home/megam/.ssh/megam_ec2.key",
            "ssh_user": "ubuntu",
            "region": "ap-southeast-1",
        },
    },
    "run_list": ["role[rails]", "recipe[nginx]"],
}


@pytest.fixture
def argv_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fakes_on_path: Path) -> Path:
    path = tmp_path / "argv.jsonl"
    monkeypatch.setenv("MEGAM_FAKE_ARGV_LOG", str(path))
    return path


def runs(argv_log: Path) -> list[dict]:
    if not argv_log.exists():
        return []
    return [json.loads(line) for line in argv_log.read_text().splitlines()]


def ec2_secrets(sealer: Sealer) -> str:
    return sealer.seal({"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY})


class TestKnifeServerCreate:
    async def test_runs_knife_with_the_original_flag_map_and_no_secret_in_argv(
        self,
        bus: Bus,
        events: EventLog,
        start_herk,
        sealer: Sealer,
        argv_log: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv("MEGAM_FAKE_DEBUG", "1")  # knife -VV style: prints the loaded secrets
        monkeypatch.setenv("MEGAM_AMQP_URL", "amqp://guest:guest@broker/")  # must not reach jobs
        await start_herk(bus)
        sealed = sealer.seal(
            {
                "aws_access_key_id": ACCESS_KEY,
                "aws_secret_access_key": SECRET_KEY,
                "knife_rb": "log_level :info\n",  # the tenant's knife.rb, handed over sealed
            }
        )
        request = await submit(bus, job_request("knife.create", EC2_PARAMS, sealed=sealed))

        done = await events.terminal(request.job_id)
        assert done.state == "succeeded", done.reason

        [run] = runs(argv_log)
        config = run["config"]
        assert run["argv"] == [
            "knife", "ec2", "server", "create",
            "-c", config,
            "--run-list", "role[rails],recipe[nginx]",
            "-N", "web1.megam.co",
            "-G", "megam",
            "-I", "ami-0abc1234",
            "-f", "t1.micro",
            "-S", "megam_ec2",
            "-x", "ubuntu",
            "--identity-file", "/home/megam/.ssh/megam_ec2.key",
            "--region", "ap-southeast-1",
        ]  # fmt: skip
        assert run["config_mode"] == "0o600" and run["config_dir_mode"] == "0o700"
        assert not Path(config).exists() and not Path(config).parent.exists()
        assert "MEGAM_AMQP_URL" not in run["env"]
        assert not any(secret in arg for arg in run["argv"] for secret in (ACCESS_KEY, SECRET_KEY))

        text = events.text(request.job_id)
        assert "Instance ID: i-" in text and "Bootstrapping Chef on" in text
        assert "DEBUG: knife[:aws_access_key_id] = ****" in text
        everything = text + json.dumps([str(s) for s in events.status_of(request.job_id)])
        assert ACCESS_KEY not in everything and SECRET_KEY not in everything

    async def test_a_fog_error_fails_the_job_with_knifes_exit_code_and_message(
        self,
        bus: Bus,
        events: EventLog,
        start_herk,
        sealer: Sealer,
        argv_log: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv("MEGAM_FAKE_FAIL", "InstanceLimitExceeded")
        await start_herk(bus)
        request = await submit(
            bus, job_request("knife.create", EC2_PARAMS, sealed=ec2_secrets(sealer))
        )

        done = await events.terminal(request.job_id)
        assert done.state == "failed"
        assert done.exit_code == 100
        assert done.reason.startswith("exit code 100: ERROR: Fog::Compute::AWS::Error: ")
        assert "InstanceLimitExceeded" in done.reason
        assert len(runs(argv_log)) == 1, "a server create is not idempotent: never retried"


class TestKnifeServerDelete:
    async def test_deletes_with_purge_and_without_the_identity_flag(
        self, bus: Bus, events: EventLog, start_herk, sealer: Sealer, argv_log: Path
    ) -> None:
        await start_herk(bus)
        request = await submit(
            bus, job_request("knife.delete", EC2_PARAMS, sealed=ec2_secrets(sealer))
        )

        done = await events.terminal(request.job_id)
        assert done.state == "succeeded", done.reason
        [run] = runs(argv_log)
        assert run["argv"] == [
            "knife", "ec2", "server", "delete", "web1.megam.co",
            "-c", run["config"], "-P", "-y", "-N", "web1.megam.co",
            "--region", "ap-southeast-1",
        ]  # fmt: skip
        assert "WARNING: Deleted node web1.megam.co" in events.text(request.job_id)


class TestChefConverge:
    async def test_runs_chef_client_in_local_mode_in_the_chef_repo(
        self, bus: Bus, events: EventLog, start_herk, argv_log: Path, tmp_path: Path
    ) -> None:
        repo = tmp_path / "chef-repo"
        (repo / "cookbooks" / "nginx").mkdir(parents=True)
        await start_herk(bus)
        request = await submit(
            bus,
            job_request("chef.converge", {"run_list": ["recipe[nginx]"], "chef_repo": str(repo)}),
        )

        done = await events.terminal(request.job_id)
        assert done.state == "succeeded", done.reason
        [run] = runs(argv_log)
        assert run["argv"] == [
            "chef-client", "--local-mode", "--chef-license", "accept",
            "--override-runlist", "recipe[nginx]",
        ]  # fmt: skip
        assert run["cwd"] == str(repo)
        assert "Chef Infra Client finished" in events.text(request.job_id)

    async def test_a_missing_cookbook_fails_with_chef_clients_error(
        self, bus: Bus, events: EventLog, start_herk, argv_log: Path, tmp_path: Path
    ) -> None:
        repo = tmp_path / "empty-repo"
        repo.mkdir()
        await start_herk(bus)
        request = await submit(
            bus,
            job_request("chef.converge", {"run_list": ["recipe[nginx]"], "chef_repo": str(repo)}),
        )
        # chef.converge is idempotent, so a failed attempt is retried after a backoff.
        retrying = await events.state(request.job_id, "queued")
        assert retrying.attempt == 1
        assert retrying.reason.startswith("attempt 1 failed: exit code 1: ")
        assert '412 "Precondition Failed"' in retrying.reason
        assert "attempt 2 of 3 in" in retrying.reason
        assert "No such cookbook: nginx" in events.text(request.job_id)


def _params(cctype: str, **spec: str) -> KnifeParams:
    raw = {
        "cloud": {
            "cctype": cctype,
            "spec": {"groups": "web", "image": "img-1", "flavor": "small", **spec},
            "access": {
                "ssh_key": "key1",
                "ssh_user": "ubuntu",
                "identity_file": "/keys/k.pem",
                "zone": "zone-a",
                "region": "region-1",
            },
        },
        "run_list": ["role[web]"],
    }
    return validate("knife", raw)  # type: ignore[return-value]


CREDENTIALS = {
    "ec2": {"aws_access_key_id": "AKIA1234", "aws_secret_access_key": "secret1234"},
    "google": {"gce_project": "megam-1", "google_json": '{"type": "service_account"}'},
    "hp": {"hp_access_key": "hpak1234", "hp_secret_key": "hpsk1234", "hp_tenant_id": "t-1"},
    "openstack": {
        "openstack_username": "megam",
        "openstack_password": "pw123456",
        "openstack_auth_url": "https://keystone.example/v2.0",
    },
}


class TestKnifeArgvPerCloud:
    """The argv herk builds for every cloud is one the knife stand-in accepts."""

    @pytest.mark.parametrize("cctype", ["ec2", "google", "hp", "openstack"])
    @pytest.mark.parametrize("action", ["create", "delete"])
    def test_knife_accepts_the_argv(
        self, cctype: str, action: str, fakes_on_path: Path, tmp_path: Path
    ) -> None:
        build = chef.knife_create_argv if action == "create" else chef.knife_delete_argv
        with chef.KnifeConfig(cctype, CREDENTIALS[cctype], under=tmp_path) as config:
            argv = build(_params(cctype, tenant_id="tenant-9"), "web1.megam.co", config)
            result = subprocess.run(
                [str(fakes_on_path / argv[0]), *argv[1:]],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        assert result.returncode == 0, result.stderr
        if action == "delete":
            assert "--identity-file" not in argv

    def test_google_names_the_instance_without_dots_and_passes_its_credentials_file(
        self, tmp_path: Path
    ) -> None:
        with chef.KnifeConfig("google", CREDENTIALS["google"], under=tmp_path) as config:
            argv = chef.knife_create_argv(_params("google"), "web1.megam.co", config)
            credentials = config.parent / "google.json"
            assert oct(credentials.stat().st_mode & 0o777) == "0o600"
        assert argv[:7] == [
            "knife", "google", "server", "create", "web1megamco", "-f", str(credentials)
        ]  # fmt: skip
        assert argv[argv.index("-m") + 1] == "small" and argv[argv.index("-Z") + 1] == "zone-a"

    def test_hp_passes_the_tenant(self, tmp_path: Path) -> None:
        with chef.KnifeConfig("hp", CREDENTIALS["hp"], under=tmp_path) as config:
            argv = chef.knife_create_argv(
                _params("hp", tenant_id="tenant-9"), "n1.megam.co", config
            )
        assert argv[argv.index("-T") + 1] == "tenant-9"

    def test_empty_values_are_left_out(self, tmp_path: Path) -> None:
        params = validate("knife", {"cloud": {"cctype": "ec2", "spec": {"image": "ami-1"}}})
        with chef.KnifeConfig("ec2", CREDENTIALS["ec2"], under=tmp_path) as config:
            argv = chef.knife_create_argv(params, "n1.megam.co", config)  # type: ignore[arg-type]
        assert argv[argv.index("-N") :] == ["-N", "n1.megam.co", "-I", "ami-1"]


class TestPrivateKnifeConfig:
    def test_secrets_live_in_a_private_file_that_is_removed_afterwards(
        self, tmp_path: Path
    ) -> None:
        tricky = {
            "aws_access_key_id": "AKIA'quote\\slash",
            "aws_secret_access_key": "s3cr3tkey",
            "knife_rb": "log_level :info\n",
        }
        with chef.KnifeConfig("ec2", tricky, under=tmp_path) as config:
            text = config.read_text()
            tenant_rb = config.parent / "tenant.rb"
            assert tenant_rb.read_text() == "log_level :info\n"
            for path in (config, tenant_rb):
                assert oct(path.stat().st_mode & 0o777) == "0o600"
            assert oct(config.parent.stat().st_mode & 0o777) == "0o700"
            assert config.parent.parent == tmp_path
        assert not config.parent.exists()
        assert text.splitlines()[1:] == [
            f"Chef::Config.from_file('{tenant_rb}')",
            "knife[:aws_access_key_id] = 'AKIA\\'quote\\\\slash'",
            "knife[:aws_secret_access_key] = 's3cr3tkey'",
        ]

    def test_a_config_is_never_written_outside_a_private_directory(self) -> None:
        with pytest.raises(ValueError, match="private directory"):
            chef.KnifeConfig("ec2", CREDENTIALS["ec2"]).__enter__()

    def test_missing_credentials_are_refused_before_knife_runs(self) -> None:
        with pytest.raises(chef.CredentialsError, match="aws_secret_access_key"):
            chef.KnifeConfig("ec2", {"aws_access_key_id": "AKIA1234"})


class TestTheKnifeStandIn:
    """The stand-in must reject what real knife rejects, or the argv tests prove nothing."""

    def run(self, fakes: Path, *argv: str, env: dict[str, str] | None = None):
        return subprocess.run(
            [str(fakes / "knife"), *argv],
            capture_output=True, text=True, timeout=30, check=False,
            env={**os.environ, **(env or {})},
        )  # fmt: skip

    def test_an_unknown_option_is_an_error_with_usage(self, fakes_on_path: Path) -> None:
        result = self.run(fakes_on_path, "ec2", "server", "create", "--bogus", "1")
        assert result.returncode == 1
        assert "ERROR: invalid option: --bogus" in result.stderr
        assert "USAGE: knife ec2 server create" in result.stderr

    def test_missing_credentials_give_knife_ec2s_error(
        self, fakes_on_path: Path, tmp_path: Path
    ) -> None:
        config = tmp_path / "knife.rb"
        config.write_text("knife[:aws_access_key_id] = 'AKIA1234'\n")
        config.chmod(0o600)
        result = self.run(fakes_on_path, "ec2", "server", "create", "-c", str(config), "-I", "a")
        assert result.returncode == 1
        assert "You did not provide a valid 'AWS Secret Access Key' value." in result.stderr

    def test_a_config_others_can_read_is_refused(self, fakes_on_path: Path, tmp_path: Path):
        config = tmp_path / "knife.rb"
        config.write_text("knife[:aws_access_key_id] = 'AKIA1234'\n")
        config.chmod(0o644)
        result = self.run(fakes_on_path, "ec2", "server", "create", "-c", str(config))
        assert result.returncode == 1 and "0o644" in result.stderr

    def test_delete_without_yes_asks_and_stops(self, fakes_on_path: Path, tmp_path: Path):
        with chef.KnifeConfig("ec2", CREDENTIALS["ec2"], under=tmp_path) as config:
            result = self.run(fakes_on_path, "ec2", "server", "delete", "n1", "-c", str(config))
        assert result.returncode == 3 and "Do you really want to delete" in result.stdout

    def test_chef_client_refuses_to_run_without_the_license(self, fakes_on_path: Path):
        result = subprocess.run(
            [str(fakes_on_path / "chef-client"), "--local-mode"],
            capture_output=True, text=True, timeout=30, check=False,
            env={k: v for k, v in os.environ.items() if k != "CHEF_LICENSE"},
        )  # fmt: skip
        assert result.returncode == 172
        assert "cannot execute without accepting the license" in result.stderr
