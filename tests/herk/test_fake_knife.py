"""The knife stand-in reads command lines the way real knife does (``knife.md`` in the project's
shared reference): if it accepted what knife refuses, herk's argv tests would prove nothing.

Its option tables are the plugins' own (``tests/fakes/knife-options.json``); these tests hold
its parser (``tests/fakes/_mixlib.py``) to mixlib-cli's rules and the script to what knife and
each plugin do with a command line before touching a cloud.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from herk_testkit import FAKES

from herk import chef


def _load_mixlib():
    spec = importlib.util.spec_from_file_location("_mixlib", FAKES / "_mixlib.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["_mixlib"] = module
    spec.loader.exec_module(module)
    return module


mixlib = _load_mixlib()
TABLES = mixlib.load()


def table(cloud: str, action: str):
    return mixlib.command_table(TABLES, cloud, action)


def values(cloud: str, action: str, *argv: str) -> dict:
    return table(cloud, action).parse(list(argv)).values


class TestLongOptions:
    def test_a_unique_prefix_is_the_option(self) -> None:
        assert values("ec2", "create", "--ssh-identity", "/k") == {"ssh_identity_file": "/k"}

    def test_every_word_of_a_long_option_may_be_abbreviated(self) -> None:
        assert values("ec2", "create", "--ssh-id", "/k") == {"ssh_identity_file": "/k"}
        assert values("ec2", "create", "--ava-zo", "a") == {"availability_zone": "a"}

    def test_an_ambiguous_prefix_is_refused(self) -> None:
        with pytest.raises(mixlib.AmbiguousOption, match="ambiguous option: --con"):
            values("ec2", "create", "--con", "x")

    def test_a_prefix_of_every_candidate_resolves_to_the_shortest(self) -> None:
        # "--secre" matches --secret and --secret-file: OptionParser takes --secret
        assert values("ec2", "create", "--secre", "s") == {"secret": "s"}

    def test_an_exact_name_wins_over_longer_ones(self) -> None:
        assert values("ec2", "create", "--secret-file", "f") == {"secret_file": "f"}

    def test_completion_ignores_case_and_underscores_are_dashes(self) -> None:
        assert values("ec2", "create", "--IMAGE", "ami-1") == {"image": "ami-1"}
        assert values("ec2", "create", "--node_name", "n1") == {"chef_node_name": "n1"}

    def test_an_inline_value_follows_an_equals_sign(self) -> None:
        assert values("ec2", "create", "--flavor=t3.micro") == {"flavor": "t3.micro"}

    def test_a_negated_switch_turns_its_option_off(self) -> None:
        assert values("google", "create", "--no-gce-preemptible") == {"preemptible": False}
        assert values("google", "create", "--gce-preemptible") == {"preemptible": True}

    def test_the_gone_identity_file_option_is_unknown(self) -> None:
        with pytest.raises(mixlib.InvalidOption, match="invalid option: --identity-file"):
            values("ec2", "create", "--identity-file", "/k")

    def test_every_long_option_of_every_table_is_reached_by_its_name(self) -> None:
        for cloud in ("ec2", "google", "openstack"):
            for action in ("create", "delete"):
                parser = table(cloud, action)
                for switch in parser.switches:
                    for name in switch.long:
                        found = parser.long_switch(name, "--" + name)
                        assert name in found.long, (cloud, action, name)
                        # a later definition of the same name wins; it is never a regular
                        # option's name reaching a deprecated one
                        assert found.order >= switch.order or not switch.tail


class TestShortFlags:
    @pytest.mark.parametrize(
        ("cloud", "flag", "key"),
        [
            ("ec2", "-G", "ssh_gateway"),  # not security_groups, defined before it
            ("openstack", "-G", "ssh_gateway"),  # not openstack_security_groups
            ("google", "-m", "msi_url"),  # not machine_type
            ("google", "-f", "flavor"),  # -f json was the credentials file in 2013
            ("google", "-T", "tags"),  # not image_os_type
            ("ec2", "-i", "ssh_identity_file"),
        ],
    )
    def test_the_later_definition_wins_a_shared_short_flag(
        self, cloud: str, flag: str, key: str
    ) -> None:
        assert values(cloud, "create", flag, "v") == {key: "v"}

    def test_a_value_may_be_attached(self) -> None:
        assert values("ec2", "create", "-Iami-1") == {"image": "ami-1"}

    def test_flags_without_values_combine(self) -> None:
        assert values("ec2", "delete", "-Py") == {"purge": True, "yes": True}

    def test_an_undefined_short_flag_is_completed_against_the_long_options(self) -> None:
        # knife-google defines no -n: it completes to every long option starting with n
        with pytest.raises(mixlib.AmbiguousOption, match="ambiguous option: -n"):
            values("google", "create", "-n", "default")

    def test_an_undefined_short_flag_nothing_completes_is_unknown(self) -> None:
        with pytest.raises(mixlib.InvalidOption, match="invalid option: -Z"):
            values("openstack", "delete", "-Z", "nova")


class TestDeprecatedAliases:
    def test_a_deprecated_alias_sets_its_replacement_with_a_warning(self) -> None:
        parsed = table("ec2", "create").parse(["--ssh-user", "ubuntu"])
        assert parsed.values["connection_user"] == "ubuntu"
        assert parsed.warnings == [
            "ssh_user: This flag is deprecated. Use -U/--connection-user instead."
        ]

    def test_x_reaches_the_connection_user_through_a_deprecated_alias(self) -> None:
        parsed = table("openstack", "create").parse(["-x", "ubuntu"])
        assert parsed.values["connection_user"] == "ubuntu" and parsed.warnings

    def test_a_regular_option_wins_over_a_deprecated_one_of_the_same_name(self) -> None:
        # knife-ec2 defines --max-wait twice: max_wait, and the deprecated auth_timeout
        parsed = table("ec2", "create").parse(["--max-wait", "60"])
        assert parsed.values == {"max_wait": "60"} and parsed.warnings == []

    def test_a_prefix_reaches_a_deprecated_alias_only_when_no_regular_option_matches(
        self,
    ) -> None:
        # "--ssh-pa" completes to nothing regular, so to the deprecated --ssh-password
        parsed = table("ec2", "create").parse(["--ssh-pa", "pw"])
        assert parsed.values["connection_password"] == "pw" and parsed.warnings
        # "--ssh-g" completes among the regular options (--ssh-gateway, --ssh-gateway-identity)
        assert values("ec2", "create", "--ssh-g", "gw") == {"ssh_gateway": "gw"}


class TestArguments:
    def test_options_and_arguments_mix_and_double_dash_ends_the_options(self) -> None:
        parsed = table("ec2", "delete").parse(["i-0abc12345", "-y", "--", "--purge"])
        assert parsed.positional == ["i-0abc12345", "--purge"]
        assert parsed.values == {"yes": True}

    def test_a_required_value_must_be_there(self) -> None:
        with pytest.raises(mixlib.MissingArgument, match="missing argument: --image"):
            values("ec2", "create", "--image")

    def test_a_flag_takes_no_value(self) -> None:
        with pytest.raises(mixlib.NeedlessArgument, match="needless argument: --yes=1"):
            values("ec2", "delete", "--yes=1")

    def test_a_placed_optional_value_is_taken_only_when_it_is_not_an_option(self) -> None:
        assert values("openstack", "create", "--openstack-floating-ip", "--flavor", "m1") == {
            "openstack_floating_ip": None,
            "flavor": "m1",
        }
        assert values("openstack", "create", "--openstack-floating-ip", "10.0.0.9") == {
            "openstack_floating_ip": "10.0.0.9"
        }


# the script: what knife does with a command line ---------------------------------------------


def knife(
    *argv: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(FAKES / "knife"), *argv],
        capture_output=True, text=True, timeout=30, check=False, input=stdin,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.fixture
def config(tmp_path: Path):
    def write(**settings: str) -> str:
        path = tmp_path / "knife.rb"
        path.write_text("".join(f"knife[:{k}] = '{v}'\n" for k, v in settings.items()))
        path.chmod(0o600)
        return str(path)

    return write


EC2_KEYS = {"aws_access_key_id": "AKIA1234", "aws_secret_access_key": "secret1234"}
OPENSTACK_KEYS = {
    "openstack_username": "megam",
    "openstack_password": "pw123456",
    "openstack_auth_url": "https://keystone.example/v3",
}


class TestWhatKnifeDoesWithACommandLine:
    def test_an_unknown_option_prints_the_usage_on_stdout_and_exits_1(self, tmp_path: Path):
        log = tmp_path / "argv.jsonl"
        result = knife("ec2", "server", "create", "--bogus", "1",
                       env={"MEGAM_FAKE_ARGV_LOG": str(log)})  # fmt: skip
        assert result.returncode == 1
        assert result.stdout.startswith(
            "Error: invalid option: --bogus\nUSAGE: knife ec2 server create (options)\n"
        )
        assert "--ssh-identity-file IDENTITY_FILE" in result.stdout
        assert not log.exists(), "refused before it read its config or called a cloud"

    def test_an_ambiguous_option_aborts_knife(self) -> None:
        result = knife("google", "server", "create", "web1", "-n", "default")
        assert result.returncode == 1
        assert "ambiguous option: -n (OptionParser::AmbiguousOption)" in result.stderr

    def test_there_is_no_hp_plugin(self) -> None:
        result = knife("hp", "server", "create", "-I", "img")
        assert result.returncode == 10
        assert "FATAL: Cannot find subcommand for: 'hp server create -I img'" in result.stderr

    @pytest.mark.parametrize(
        "argv",
        [
            # the 2013 command lines (docs/original.md §4.2), as herk built them before
            ["ec2", "server", "create", "-N", "n1", "-G", "megam", "-I", "ami-1", "-x", "ubuntu",
             "--identity-file", "/k.pem"],
            ["google", "server", "create", "n1", "-f", "/g.json", "-n", "default", "-I", "img",
             "-m", "n1-standard-1", "-Z", "us-central1-a"],
            ["openstack", "server", "delete", "n1", "-P", "-y", "-N", "n1", "-Z", "nova"],
        ],
    )  # fmt: skip
    def test_the_2013_command_lines_are_refused(self, argv: list[str], config) -> None:
        result = knife(*argv, "-c", config(**EC2_KEYS))
        assert result.returncode == 1
        assert "Error: invalid option" in result.stdout or "ambiguous" in result.stderr

    def test_ec2_names_every_missing_value(self, config) -> None:
        result = knife("ec2", "server", "create", "-c", config(aws_access_key_id="AKIA1"))
        assert result.returncode == 1
        assert result.stderr.splitlines()[-2:] == [
            "ERROR: You did not provide a valid 'Image' value.",
            "ERROR: You did not provide a valid 'AWS Secret Access Key' value.",
        ]

    def test_a_flag_or_a_knife_setting_satisfies_a_required_option(self, config) -> None:
        result = knife("ec2", "server", "create", "-c", config(**EC2_KEYS, image="ami-1"))
        assert result.returncode == 0, result.stderr
        assert "Image: ami-1" in result.stdout

    def test_google_needs_application_default_credentials(self, config, tmp_path: Path):
        argv = ["google", "server", "create", "web1", "-c", config(gce_project="p1"),
                "--gce-zone", "z", "--gce-machine-type", "m", "--gce-image", "i",
                "--connection-port", "22", "--image-os-type", "linux",
                "--connection-protocol", "ssh"]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "GOOGLE_APPLICATION_CREDENTIALS"}
        without = subprocess.run([str(FAKES / "knife"), *argv], capture_output=True, text=True,
                                 timeout=30, check=False, env=env)  # fmt: skip
        assert without.returncode == 100
        assert "Could not load the default credentials" in without.stderr
        key = tmp_path / "sa.json"
        key.write_text(json.dumps({"type": "service_account"}))
        key.chmod(0o644)
        readable = knife(*argv, env={"GOOGLE_APPLICATION_CREDENTIALS": str(key)})
        assert readable.returncode == 1 and "0o644" in readable.stderr
        key.chmod(0o600)
        ok = knife(*argv, env={"GOOGLE_APPLICATION_CREDENTIALS": str(key)})
        assert ok.returncode == 0, ok.stderr

    def test_google_names_its_missing_parameters(self, config, tmp_path: Path) -> None:
        key = tmp_path / "sa.json"
        key.write_text("{}")
        key.chmod(0o600)
        result = knife("google", "server", "create", "web1", "-c", config(gce_project="p1"),
                       "--gce-image", "i",
                       env={"GOOGLE_APPLICATION_CREDENTIALS": str(key)})  # fmt: skip
        assert result.returncode == 1
        assert "The following required parameters are missing: gce_zone, machine_type" in (
            result.stderr
        )

    def test_openstack_create_needs_a_protocol_and_an_image_os_type(self, config) -> None:
        base = ["openstack", "server", "create", "-c", config(**OPENSTACK_KEYS),
                "--image", "ubuntu", "--flavor", "m1.small"]  # fmt: skip
        no_protocol = knife(*base)
        assert no_protocol.returncode == 1
        assert "You must provide a valid bootstrap protocol" in no_protocol.stderr
        no_os_type = knife(*base, "--connection-protocol", "ssh")
        assert "You must provide --image-os-type option [windows/linux]" in no_os_type.stderr
        ready = knife(*base, "--connection-protocol", "ssh", "--image-os-type", "linux")
        assert ready.returncode == 0, ready.stderr

    def test_openstack_names_missing_credentials(self, config) -> None:
        result = knife("openstack", "server", "delete", "x", "-c", config(), "-y")
        assert result.returncode == 1
        assert "You did not provide a valid 'Openstack Password' value." in result.stderr


class TestEc2DeletesByInstanceId:
    def test_a_node_name_is_not_an_instance_id(self, config) -> None:
        result = knife("ec2", "server", "delete", "web1.megam.co", "-c", config(**EC2_KEYS), "-y")
        assert result.returncode == 100
        assert 'InvalidInstanceIDMalformed: Invalid id: "web1.megam.co"' in result.stderr

    def test_the_id_create_printed_deletes_the_server(self, config, tmp_path: Path) -> None:
        cloud = {"MEGAM_FAKE_CLOUD": str(tmp_path / "cloud")}
        settings = config(**EC2_KEYS)
        created = knife("ec2", "server", "create", "-c", settings, "--image", "ami-1",
                        "--node-name", "web1", env=cloud)  # fmt: skip
        instance_id = chef_recorded(created.stdout)
        assert instance_id.startswith("i-")
        deleted = knife("ec2", "server", "delete", instance_id, "-c", settings, "-y", env=cloud)
        assert deleted.returncode == 0 and f"Deleted server {instance_id}" in deleted.stdout
        again = knife("ec2", "server", "delete", instance_id, "-c", settings, "-y", env=cloud)
        assert again.returncode == 100 and "InvalidInstanceIDNotFound" in again.stderr

    def test_without_an_id_the_chef_node_names_the_server(self, config, tmp_path: Path) -> None:
        cloud = {"MEGAM_FAKE_CLOUD": str(tmp_path / "cloud")}
        settings = config(**EC2_KEYS)
        created = knife("ec2", "server", "create", "-c", settings, "--image", "ami-1",
                        "--node-name", "web1", env=cloud)  # fmt: skip
        deleted = knife("ec2", "server", "delete", "-c", settings, "-y", "-N", "web1", env=cloud)
        assert deleted.returncode == 0
        assert f"Deleted server {chef_recorded(created.stdout)}" in deleted.stdout

    def test_without_an_id_an_unknown_chef_node_deletes_nothing(self, config, tmp_path: Path):
        # knife-ec2 2.2 exits 0 here: why herk passes the id create printed when it has it
        deleted = knife("ec2", "server", "delete", "-c", config(**EC2_KEYS), "-y", "-N", "web9",
                        env={"MEGAM_FAKE_CLOUD": str(tmp_path / "cloud")})  # fmt: skip
        assert deleted.returncode == 0 and "Deleted server" not in deleted.stdout

    def test_delete_without_yes_asks_and_stops(self, config) -> None:
        result = knife("ec2", "server", "delete", "i-0abc12345", "-c", config(**EC2_KEYS))
        assert result.returncode == 3 and "Do you really want to delete" in result.stdout


def chef_recorded(stdout: str) -> str:
    from megam.params import recorded_instance_id

    return recorded_instance_id(stdout.splitlines(), "ec2")


def test_herk_emits_only_exact_long_options_of_the_targeted_plugins() -> None:
    """Each option herk's command lines use is a long option of the plugin, named in full, and
    reaches the option the field is meant for (the tables' ``intent``)."""
    for cloud, options in chef.CREATE_OPTIONS.items():
        intent = TABLES["clouds"][cloud]["create"]["intent"]
        for option, field in options:
            switch = table(cloud, "create").long_switch(option[2:], option)
            assert option[2:] in switch.long and not switch.tail, (cloud, option)
            assert switch.key == intent[field.split(".")[1]], (cloud, option, field)
    for cloud, options in chef.DELETE_OPTIONS.items():
        intent = TABLES["clouds"][cloud]["delete"]["intent"]
        for option, field in options:
            switch = table(cloud, "delete").long_switch(option[2:], option)
            assert switch.key == intent[field.split(".")[1]], (cloud, option, field)


def test_herks_chef_client_command_line_is_one_chef_client_19_takes() -> None:
    client = mixlib.OptionTable(TABLES["chef-client"]["options"], "USAGE: chef-client")
    parsed = client.parse(chef.chef_client_argv(["recipe[nginx]", "role[web]"])[1:])
    assert parsed.values == {
        "local_mode": True,
        "chef_license": "accept",
        "override_runlist": "recipe[nginx],role[web]",
    }
    assert parsed.positional == [] and parsed.warnings == []
