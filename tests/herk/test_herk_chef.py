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

import msgspec
import pytest
from herk_testkit import EventLog, job_request, submit

from herk import chef
from herk.chef import EC2_INSTANCE_ID
from herk.params import validate
from megam.bus import Bus
from megam.params import KnifeParams, recorded_instance_id
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
    monkeypatch.setenv("MEGAM_FAKE_CLOUD", str(tmp_path / "cloud"))  # what knife created
    return path


def runs(argv_log: Path) -> list[dict]:
    if not argv_log.exists():
        return []
    return [json.loads(line) for line in argv_log.read_text().splitlines()]


def ec2_secrets(sealer: Sealer) -> str:
    return sealer.seal({"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY})


class TestKnifeServerCreate:
    async def test_runs_knife_ec2_with_the_options_it_takes_today_and_no_secret_in_argv(
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
        # knife-ec2 2.2: long forms (-G is --ssh-gateway today), --identity-file is gone
        assert run["argv"] == [
            "knife", "ec2", "server", "create",
            "--config", config,
            "--run-list", "role[rails],recipe[nginx]",
            "--node-name", "web1.megam.co",
            "--groups", "megam",
            "--image", "ami-0abc1234",
            "--flavor", "t1.micro",
            "--ssh-key", "megam_ec2",
            "--connection-user", "ubuntu",
            "--ssh-identity-file", "/home/megam/.ssh/megam_ec2.key",
            "--region", "ap-southeast-1",
            "--chef-license", "accept",
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
        # knife-ec2 2.x calls AWS through aws-sdk-ec2 (it used Fog in 2013)
        assert done.reason.startswith("exit code 100: ERROR: Aws::EC2::Errors::")
        assert "InstanceLimitExceeded" in done.reason
        assert len(runs(argv_log)) == 1, "a server create is not idempotent: never retried"


class TestKnifeServerDelete:
    async def test_deletes_the_instance_create_printed_and_purges_the_chef_node(
        self, bus: Bus, events: EventLog, start_herk, sealer: Sealer, argv_log: Path
    ) -> None:
        await start_herk(bus)
        create = await submit(
            bus, job_request("knife.create", EC2_PARAMS, sealed=ec2_secrets(sealer))
        )
        assert (await events.terminal(create.job_id)).state == "succeeded"
        instance_id = _created_id(events, create.job_id)
        assert EC2_INSTANCE_ID.match(instance_id), instance_id

        params = {**EC2_PARAMS, "instance_id": instance_id}
        params.pop("run_list")
        delete = await submit(
            bus, job_request("knife.delete", params, sealed=ec2_secrets(sealer))
        )
        done = await events.terminal(delete.job_id)
        assert done.state == "succeeded", done.reason
        run = runs(argv_log)[-1]
        assert run["argv"] == [
            "knife", "ec2", "server", "delete", instance_id,
            "--config", run["config"], "--purge", "--yes", "--node-name", "web1.megam.co",
            "--region", "ap-southeast-1",
        ]  # fmt: skip
        text = events.text(delete.job_id)
        assert f"WARNING: Deleted server {instance_id}" in text
        assert "WARNING: Deleted node web1.megam.co" in text

    async def test_without_a_recorded_id_knife_ec2_finds_it_from_the_chef_node(
        self, bus: Bus, events: EventLog, start_herk, sealer: Sealer, argv_log: Path
    ) -> None:
        await start_herk(bus)
        create = await submit(
            bus, job_request("knife.create", EC2_PARAMS, sealed=ec2_secrets(sealer))
        )
        assert (await events.terminal(create.job_id)).state == "succeeded"
        instance_id = _created_id(events, create.job_id)
        delete = await submit(
            bus, job_request("knife.delete", EC2_PARAMS, sealed=ec2_secrets(sealer))
        )
        assert (await events.terminal(delete.job_id)).state == "succeeded"
        assert runs(argv_log)[-1]["argv"][4:6] == ["--config", runs(argv_log)[-1]["config"]]
        assert f"WARNING: Deleted server {instance_id}" in events.text(delete.job_id)

    async def test_an_instance_id_that_is_not_ec2s_is_rejected_before_knife_runs(
        self, bus: Bus, events: EventLog, start_herk, sealer: Sealer, argv_log: Path
    ) -> None:
        await start_herk(bus)
        params = {**EC2_PARAMS, "instance_id": "web1.megam.co"}
        delete = await submit(
            bus, job_request("knife.delete", params, sealed=ec2_secrets(sealer))
        )
        done = await events.terminal(delete.job_id)
        assert done.state == "rejected"
        assert "'web1.megam.co' is not an EC2 instance id" in done.reason
        assert runs(argv_log) == []


class TestEveryCloudThroughHerk:
    """Each cloud's create, then delete of what it created, through herk and the stand-in."""

    @pytest.mark.parametrize("cctype", ["ec2", "google", "openstack"])
    async def test_create_then_delete(
        self,
        cctype: str,
        bus: Bus,
        events: EventLog,
        start_herk,
        sealer: Sealer,
        argv_log: Path,
    ) -> None:
        await start_herk(bus)
        raw = _raw(cctype)
        sealed = sealer.seal(CREDENTIALS[cctype])
        create = await submit(bus, job_request("knife.create", raw, sealed=sealed))
        done = await events.terminal(create.job_id)
        assert done.state == "succeeded", done.reason + events.text(create.job_id)
        lines = [line.text for line in events.lines(create.job_id)]
        instance_id = recorded_instance_id(lines, cctype)
        assert bool(instance_id) == (cctype != "google"), "knife-google names its instances"
        delete_params = {"cloud": raw["cloud"], "instance_id": instance_id}
        delete = await submit(bus, job_request("knife.delete", delete_params, sealed=sealed))
        done = await events.terminal(delete.job_id)
        assert done.state == "succeeded", done.reason + events.text(delete.job_id)
        assert "WARNING: Deleted server" in events.text(delete.job_id)
        for run in runs(argv_log):
            assert not any(v in arg for arg in run["argv"] for v in CREDENTIALS[cctype].values())
            assert ("GOOGLE_APPLICATION_CREDENTIALS" in run["env"]) == (cctype == "google")
        assert not (Path(runs(argv_log)[0]["config"]).parent).exists()

    async def test_hp_is_refused_with_the_reason(
        self, bus: Bus, events: EventLog, start_herk, sealer: Sealer, argv_log: Path
    ) -> None:
        await start_herk(bus)
        create = await submit(
            bus, job_request("knife.create", _raw("hp"), sealed=sealer.seal(CREDENTIALS["hp"]))
        )
        done = await events.terminal(create.job_id)
        assert done.state == "rejected"
        assert "cloud type hp cannot be used: knife-hp was emptied and deprecated" in done.reason
        assert "use an openstack cloud" in done.reason
        assert runs(argv_log) == []


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


def _created_id(events: EventLog, job_id: str) -> str:
    return recorded_instance_id((line.text for line in events.lines(job_id)), "ec2")


def _raw(cctype: str, **spec: str) -> dict:
    return {
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


def _params(cctype: str, **spec: str) -> KnifeParams:
    return validate("knife", _raw(cctype, **spec))  # type: ignore[return-value]


CREDENTIALS = {
    "ec2": {"aws_access_key_id": "AKIA1234", "aws_secret_access_key": "secret1234"},
    "google": {"gce_project": "megam-1", "google_json": '{"type": "service_account"}'},
    "hp": {"hp_access_key": "hpak1234", "hp_secret_key": "hpsk1234", "hp_tenant_id": "t-1"},
    "openstack": {
        "openstack_username": "stackadmin",
        "openstack_password": "pw123456",
        "openstack_auth_url": "https://keystone.example/v2.0",
    },
}


class TestKnifeArgvPerCloud:
    """The argv herk builds for every cloud is one the knife stand-in (the plugins' own option
    tables, parsed as mixlib-cli does) accepts."""

    @pytest.mark.parametrize("cctype", ["ec2", "google", "openstack"])
    @pytest.mark.parametrize("action", ["create", "delete"])
    def test_knife_accepts_the_argv(
        self, cctype: str, action: str, fakes_on_path: Path, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
    ) -> None:
        build = chef.knife_create_argv if action == "create" else chef.knife_delete_argv
        params = _params(cctype, tenant_id="tenant-9")
        if action == "delete" and cctype != "google":
            instance = "i-0abc1234def567890" if cctype == "ec2" else "3f1c2a7e-0000-4000-8000-1"
            params = msgspec.structs.replace(params, instance_id=instance)
        with chef.KnifeConfig(cctype, CREDENTIALS[cctype], under=tmp_path) as config:
            argv = build(params, "web1.megam.co", config)
            result = subprocess.run(
                [str(fakes_on_path / argv[0]), *argv[1:]],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
                env={**os.environ, **chef.knife_environment(cctype, config)},
            )
        assert result.returncode == 0, result.stdout + result.stderr
        assert all(not arg.startswith("-") or arg.startswith("--") for arg in argv), argv
        assert "Error:" not in result.stdout and "deprecated" not in result.stdout

    def test_google_names_the_instance_without_dots_and_passes_its_key_by_environment(
        self, tmp_path: Path
    ) -> None:
        with chef.KnifeConfig("google", CREDENTIALS["google"], under=tmp_path) as config:
            argv = chef.knife_create_argv(_params("google"), "web1.megam.co", config)
            env = chef.knife_environment("google", config)
            credentials = Path(env["GOOGLE_APPLICATION_CREDENTIALS"])
            assert credentials.parent == config.parent
            assert oct(credentials.stat().st_mode & 0o777) == "0o600"
            assert credentials.read_text() == CREDENTIALS["google"]["google_json"]
        assert not credentials.exists(), "removed with the job's private directory"
        assert argv[:5] == ["knife", "google", "server", "create", "web1megamco"]
        assert str(credentials) not in argv
        assert argv[argv.index("--gce-machine-type") + 1] == "small"
        assert argv[argv.index("--gce-zone") + 1] == "zone-a"
        assert argv[-8:] == [
            "--chef-license", "accept", "--connection-protocol", "ssh",
            "--connection-port", "22", "--image-os-type", "linux",
        ]  # fmt: skip

    def test_openstack_passes_the_tenant_and_what_knife_openstack_requires(
        self, tmp_path: Path
    ) -> None:
        with chef.KnifeConfig("openstack", CREDENTIALS["openstack"], under=tmp_path) as config:
            argv = chef.knife_create_argv(
                _params("openstack", tenant_id="tenant-9"), "n1.megam.co", config
            )
        assert argv[argv.index("--openstack-tenant") + 1] == "tenant-9"
        assert argv[argv.index("--connection-protocol") + 1] == "ssh"
        assert argv[argv.index("--image-os-type") + 1] == "linux"

    def test_hp_has_no_command_line(self, tmp_path: Path) -> None:
        with (
            chef.KnifeConfig("hp", CREDENTIALS["hp"], under=tmp_path) as config,
            pytest.raises(chef.KnifeParamsError, match="HP Helion Public Cloud closed"),
        ):
            chef.knife_create_argv(_params("hp"), "n1.megam.co", config)

    @pytest.mark.parametrize(
        ("cctype", "action", "cleared", "named"),
        [
            ("ec2", "create", {"image": ""}, "spec.image"),
            ("google", "create", {"flavor": ""}, "spec.flavor"),
            ("openstack", "create", {"image": "", "flavor": ""}, "spec.image and spec.flavor"),
        ],
    )
    def test_a_value_the_plugin_requires_is_asked_for_by_name(
        self, cctype: str, action: str, cleared: dict, named: str
    ) -> None:
        problem = chef.knife_problem(_params(cctype, **cleared), action)
        assert problem is not None and f"{cctype} server {action} needs {named}" in problem

    def test_google_delete_needs_the_zone(self) -> None:
        raw = _raw("google")
        raw["cloud"]["access"]["zone"] = ""
        problem = chef.knife_problem(validate("knife", raw), "delete")  # type: ignore[arg-type]
        assert problem is not None and "needs access.zone" in problem

    def test_empty_values_are_left_out(self, tmp_path: Path) -> None:
        params = validate("knife", {"cloud": {"cctype": "ec2", "spec": {"image": "ami-1"}}})
        with chef.KnifeConfig("ec2", CREDENTIALS["ec2"], under=tmp_path) as config:
            argv = chef.knife_create_argv(params, "n1.megam.co", config)  # type: ignore[arg-type]
        assert argv[argv.index("--node-name") :] == [
            "--node-name", "n1.megam.co", "--image", "ami-1", "--chef-license", "accept"
        ]  # fmt: skip


class TestInstanceIdsFromCreatesOutput:
    def test_the_first_instance_id_line_is_the_servers(self) -> None:
        lines = ["$ knife ec2 server create ...", "Instance ID: i-0abc1234def567890",
                 "Flavor: t3.micro", "Instance ID: i-0abc1234def567890"]  # fmt: skip
        assert recorded_instance_id(lines, "ec2") == "i-0abc1234def567890"

    def test_no_line_no_id(self) -> None:
        assert recorded_instance_id(["Instance Name: web1megamco", "Instance ID:"], "ec2") == ""

    def test_only_an_id_of_the_cloud_and_never_an_option(self) -> None:
        assert recorded_instance_id(["Instance ID: web1.megam.co"], "ec2") == ""
        assert recorded_instance_id(["Instance ID: -oProxyCommand=x"], "openstack") == ""
        uuid = "3f1c2a7e-9b1d-4c55-8e0f-2d8a6b7c9e10"
        assert recorded_instance_id([f"Instance ID: {uuid}"], "openstack") == uuid

    def test_a_cloud_that_deletes_by_name_records_none(self) -> None:
        assert recorded_instance_id(["Instance ID: i-0abc1234"], "google") == ""


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
        # on stdout, as Chef::Knife#parse_options prints it (the stand-in used stderr)
        result = self.run(fakes_on_path, "ec2", "server", "create", "--bogus", "1")
        assert result.returncode == 1
        assert "Error: invalid option: --bogus" in result.stdout
        assert "USAGE: knife ec2 server create" in result.stdout

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
            result = self.run(
                fakes_on_path, "ec2", "server", "delete", "i-0abc1234", "-c", str(config)
            )
        assert result.returncode == 3 and "Do you really want to delete" in result.stdout

    def test_chef_client_refuses_to_run_without_the_license(self, fakes_on_path: Path):
        result = subprocess.run(
            [str(fakes_on_path / "chef-client"), "--local-mode"],
            capture_output=True, text=True, timeout=30, check=False,
            env={k: v for k, v in os.environ.items() if k != "CHEF_LICENSE"},
        )  # fmt: skip
        assert result.returncode == 172
        assert "cannot execute without accepting the license" in result.stderr


class TestTheDocumentedCommandLines:
    def test_docs_herk_lists_each_clouds_options_next_to_the_plugin_it_targets(self) -> None:
        doc = (Path(__file__).parents[2] / "docs" / "herk.md").read_text()
        for cctype, plugin in chef.TARGETS.items():
            [row] = [line for line in doc.splitlines() if line.startswith(f"| `{cctype}` |")]
            create, delete = row.split(" | ")[2:4]
            assert plugin.split(" on ")[0] in row
            for option, _ in chef.CREATE_OPTIONS[cctype]:
                assert option in create, (cctype, option)
            for option in chef.CREATE_FIXED[cctype]:
                assert option in create, (cctype, option)
            for option, _ in chef.DELETE_OPTIONS[cctype]:
                assert option in delete, (cctype, option)
            assert "--purge --yes --node-name" in delete
