"""The job catalogue (``actors/``): loaded and checked at start; a bad file is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from herk_testkit import BUNDLED_ACTORS, write_actor

from herk.catalogue import CatalogueError, RetryPolicy, load_catalogue
from herk.environment import job_environment
from herk.retry import backoff_delay
from megam.wire import JobRequest

VALID = 'description = "d"\nidempotent = true\ntimeout = 5\nargv = ["/bin/true"]\n'


class TestBundledCatalogue:
    def test_has_every_job_type_the_gateway_publishes(self) -> None:
        catalogue = load_catalogue(BUNDLED_ACTORS)
        assert set(catalogue) >= {
            "local.create",
            "local.delete",
            "knife.create",
            "knife.delete",
            "chef.converge",
            "noop",
            "shell.true",
        }

    def test_a_server_create_is_not_idempotent_and_never_retried(self) -> None:
        create = load_catalogue(BUNDLED_ACTORS).get("knife.create")
        assert create is not None
        assert not create.idempotent and create.retry.max_attempts == 1

    def test_converges_and_deletes_may_be_retried(self) -> None:
        catalogue = load_catalogue(BUNDLED_ACTORS)
        for name in ("chef.converge", "knife.delete", "local.create", "local.delete"):
            definition = catalogue.get(name)
            assert definition is not None and definition.idempotent
            assert definition.retry.max_attempts > 1


class TestBadFiles:
    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            ("this is = = not toml", "invalid TOML"),
            (VALID + "tiemout = 5\n", "unknown field `tiemout`"),
            ('description = "d"\nidempotent = true\nargv = ["/bin/true"]\n', "`timeout`"),
            (VALID.replace("timeout = 5", "timeout = -1"), "Expected `float` >"),
            (VALID + 'builder = "noop"\n', "exactly one of 'argv'"),
            (VALID.replace('argv = ["/bin/true"]', 'builder = "kubectl"'), "unknown builder"),
            (VALID.replace("/bin/true", "{nodename}"), "unknown placeholder {nodename}"),
            (VALID.replace("/bin/true", "{node!r}"), "no format spec or conversion"),
            (VALID + 'params = "anything"\n', "unknown params schema 'anything'"),
            (
                VALID.replace("idempotent = true", "idempotent = false")
                + "[retry]\nmax_attempts = 3\n",
                "not idempotent must not be retried",
            ),
        ],
    )
    def test_is_refused_with_the_file_name_and_the_reason(
        self, tmp_path: Path, body: str, reason: str
    ) -> None:
        path = write_actor(tmp_path, "bad.job", body)
        with pytest.raises(CatalogueError) as error:
            load_catalogue(tmp_path)
        assert str(path) in str(error.value)
        assert reason in str(error.value)

    def test_the_name_must_match_the_file(self, tmp_path: Path) -> None:
        (tmp_path / "one.toml").write_text('name = "two"\n' + VALID)
        with pytest.raises(CatalogueError, match="does not match the file name"):
            load_catalogue(tmp_path)

    def test_an_empty_or_missing_directory_is_an_error(self, tmp_path: Path) -> None:
        with pytest.raises(CatalogueError, match=r"no \*\.toml"):
            load_catalogue(tmp_path)
        with pytest.raises(CatalogueError, match="does not exist"):
            load_catalogue(tmp_path / "missing")


class TestBackoff:
    def test_doubles_per_attempt_up_to_the_cap_with_jitter_in_the_upper_half(self) -> None:
        policy = RetryPolicy(max_attempts=10, backoff=2, backoff_max=10)
        lowest = [backoff_delay(policy, attempt, lambda: 0.0) for attempt in (1, 2, 3, 4)]
        highest = [backoff_delay(policy, attempt, lambda: 1.0) for attempt in (1, 2, 3, 4)]
        assert lowest == [1.0, 2.0, 4.0, 5.0]
        assert highest == [2.0, 4.0, 8.0, 10.0]


class TestJobEnvironment:
    def request(self) -> JobRequest:
        return JobRequest(
            job_id="RIP1", type="noop", node="n1.megam.co", account="ACT1", correlation_id="c"
        )

    def test_is_built_from_an_allow_list_not_inherited(self) -> None:
        source = {
            "PATH": "/bin",
            "HOME": "/home/herk",
            "MEGAM_AMQP_URL": "amqp://user:password@broker/",
            "MEGAM_SECRET_KEY_FILE": "/etc/megam/secret.key",
            "AWS_SECRET_ACCESS_KEY": "from-herks-own-environment",
        }
        env = job_environment(self.request(), source)
        assert env["PATH"] == "/bin" and env["HOME"] == "/home/herk"
        assert env["MEGAM_JOB_ID"] == "RIP1" and env["MEGAM_NODE"] == "n1.megam.co"
        assert "MEGAM_AMQP_URL" not in env and "AWS_SECRET_ACCESS_KEY" not in env

    def test_operators_pass_more_by_name_or_prefix_but_never_herks_secrets(self) -> None:
        source = {
            "MEGAM_HERK_PASSENV": "CHEF_LICENSE, KNIFE_*, MEGAM_*",
            "CHEF_LICENSE": "accept",
            "KNIFE_HOME": "/srv/knife",
            "MEGAM_AMQP_URL": "amqp://user:password@broker/",
            "MEGAM_SECRET_KEY_FILE": "/etc/megam/secret.key",
            "OTHER": "x",
        }
        env = job_environment(self.request(), source)
        assert env["CHEF_LICENSE"] == "accept" and env["KNIFE_HOME"] == "/srv/knife"
        assert "OTHER" not in env
        assert "MEGAM_AMQP_URL" not in env and "MEGAM_SECRET_KEY_FILE" not in env
