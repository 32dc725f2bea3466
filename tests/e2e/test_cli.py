"""The ``megam`` client as a newcomer uses it, against one real ``megam up``."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import MEGAM, Processes, free_port, wait_http


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A running ``megam up`` and an environment whose profile is signed up with a local cloud."""
    root = tmp_path_factory.mktemp("cli")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEGAM_")}
    env.update(
        HOME=str(root / "home"),
        MEGAM_DATA_DIR=str(root / "data"),
        MEGAM_CREDENTIALS=str(root / "home" / "credentials.json"),
        MEGAM_PORT=str(port),
        MEGAM_URL=f"http://127.0.0.1:{port}",
        MEGAM_UID_PORT=str(free_port()),
        MEGAM_HERK_METRICS_PORT=str(free_port()),
    )
    env["MEGAM_UID_URL"] = f"http://127.0.0.1:{env['MEGAM_UID_PORT']}"
    (root / "logs").mkdir()
    procs = Processes(env, root / "logs")
    procs.start("up", "up", "--workers", "2")
    try:
        wait_http(env["MEGAM_URL"] + "/healthz")
        assert cli(env, "accounts", "create", "newcomer@example.com").returncode == 0
        assert cli(env, "clouds", "add", "home", "--provider", "local").returncode == 0
        yield env
        delete_every_node(env)
    finally:
        procs.stop_all()


def delete_every_node(env: dict[str, str]) -> None:
    """Local nodes are processes that outlive ``megam up``: the tests leave none behind."""
    for profile in saved(env)["profiles"]:
        listed = cli(env, "--profile", profile, "nodes", "list", "--json")
        for node in json.loads(listed.stdout or "[]") if listed.returncode == 0 else []:
            if node["status"] != "DELETED":
                cli(env, "--profile", profile, "nodes", "delete", node["node_name"], "--follow")


def cli(
    env: dict[str, str], *args: str, stdin: str = "", **extra: str
) -> subprocess.CompletedProcess[str]:
    """``megam ARGS`` with no terminal: stdin is ``stdin``, output is captured."""
    return subprocess.run(
        [MEGAM, *args],
        env={**env, **extra},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def saved(env: dict[str, str]) -> dict:
    return json.loads(Path(env["MEGAM_CREDENTIALS"]).read_text())


class TestNodeNames:
    def test_a_node_is_launched_with_exactly_the_name_given(self, platform: dict) -> None:
        launched = cli(platform, "nodes", "launch", "web.example.com", "--cloud", "home")
        assert launched.returncode == 0, launched.stderr
        assert re.search(r"launching web\.example\.com as job RIP\d+", launched.stdout), launched
        listed = cli(platform, "nodes", "list").stdout
        assert re.search(r"^web\.example\.com\s", listed, re.M), listed
        assert "web1.example.com" not in listed

    def test_a_name_that_ends_in_a_digit_keeps_it(self, platform: dict) -> None:
        launched = cli(platform, "nodes", "launch", "batch1.example.com", "--cloud", "home")
        assert launched.returncode == 0, launched.stderr
        listed = cli(platform, "nodes", "list").stdout
        assert re.search(r"^batch1\.example\.com\s", listed, re.M), listed
        assert "batch11" not in listed

    def test_count_numbers_the_first_label_the_megam_way(self, platform: dict) -> None:
        launched = cli(
            platform, "nodes", "launch", "pool.example.com", "--cloud", "home", "--count", "2",
            "--json",
        )
        assert launched.returncode == 0, launched.stderr
        jobs = json.loads(launched.stdout)
        assert [job["node_name"] for job in jobs] == ["pool1.example.com", "pool2.example.com"]
        assert all(re.fullmatch(r"RIP\d+", job["job_id"]) for job in jobs)

    def test_the_printed_job_id_is_the_one_jobs_show_knows(self, platform: dict) -> None:
        launched = cli(platform, "nodes", "launch", "api.example.com", "--cloud", "home")
        job_id = re.search(r"RIP\d+", launched.stdout).group(0)
        shown = cli(platform, "jobs", "show", job_id)
        assert shown.returncode == 0 and "api.example.com" in shown.stdout, shown


class TestCredentials:
    def test_accounts_create_refuses_to_replace_a_profile_without_a_terminal(
        self, platform: dict
    ) -> None:
        before = saved(platform)
        refused = cli(platform, "accounts", "create", "someone@example.com")
        assert refused.returncode == 1
        assert "already holds newcomer@example.com" in refused.stderr, refused.stderr
        assert "--force" in refused.stderr and "--profile" in refused.stderr
        assert saved(platform) == before, "the credentials file is untouched"
        elsewhere = cli(platform, "accounts", "create", "someone@example.com", "--profile", "x")
        assert elsewhere.returncode == 0, "the refusal signed nothing up: the email is still free"

    def test_accounts_create_saves_a_new_profile_and_makes_it_current(
        self, platform: dict
    ) -> None:
        created = cli(platform, "accounts", "create", "second@example.com", "--profile", "second")
        assert created.returncode == 0, created.stderr
        stored = saved(platform)
        assert stored["current"] == "second"
        assert stored["profiles"]["default"]["email"] == "newcomer@example.com"
        shown = cli(platform, "accounts", "show", "--json")
        assert json.loads(shown.stdout)["email"] == "second@example.com"
        back = cli(platform, "--profile", "default", "accounts", "show")
        assert "newcomer@example.com" in back.stdout
        by_env = cli(platform, "accounts", "show", MEGAM_PROFILE="default")
        assert "newcomer@example.com" in by_env.stdout

    def test_login_checks_the_key_against_the_gateway_before_saving_it(
        self, platform: dict
    ) -> None:
        key = saved(platform)["profiles"]["default"]["api_key"]
        wrong = cli(
            platform, "login", "newcomer@example.com", "--profile", "laptop", stdin="nope\n"
        )
        assert wrong.returncode == 1
        assert "api key is not this account's" in wrong.stderr, wrong.stderr
        assert "HMAC" not in wrong.stderr
        assert "laptop" not in saved(platform)["profiles"]

        right = cli(
            platform, "login", "newcomer@example.com", "--profile", "laptop", stdin=key + "\n"
        )
        assert right.returncode == 0, right.stderr
        assert key not in right.stdout + right.stderr, "the key is never printed"
        listed = cli(platform, "--profile", "laptop", "nodes", "list")
        assert listed.returncode == 0, listed.stderr

    def test_accounts_show_prints_the_key_only_when_asked(self, platform: dict) -> None:
        key = saved(platform)["profiles"]["default"]["api_key"]
        shown = cli(platform, "--profile", "default", "accounts", "show")
        assert shown.returncode == 0 and key not in shown.stdout, shown
        assert "credentials_file" in shown.stdout
        revealed = cli(platform, "--profile", "default", "accounts", "show", "--show-key")
        assert key in revealed.stdout


class TestErrorsInTheUsersWords:
    def test_an_unknown_node_points_at_nodes_list(self, platform: dict) -> None:
        shown = cli(platform, "nodes", "show", "nosuch.example.com")
        assert shown.returncode == 1
        assert "'megam nodes list'" in shown.stderr and "/v1" not in shown.stderr, shown.stderr

    def test_an_unknown_cloud_says_how_to_add_it(self, platform: dict) -> None:
        launched = cli(platform, "nodes", "launch", "x.example.com", "--cloud", "aws")
        assert launched.returncode == 1
        assert "megam clouds add aws" in launched.stderr, launched.stderr
        assert "POST" not in launched.stderr and "predef" not in launched.stderr

    def test_a_bad_node_name_states_the_rule_not_a_regex(self, platform: dict) -> None:
        launched = cli(platform, "nodes", "launch", "Web_1.example.com", "--cloud", "home")
        assert launched.returncode == 1
        assert "node name" in launched.stderr and "lower-case" in launched.stderr
        assert "regex" not in launched.stderr and "$." not in launched.stderr, launched.stderr

    def test_a_url_without_a_scheme_works(self, platform: dict) -> None:
        bare = platform["MEGAM_URL"].removeprefix("http://")
        listed = cli(platform, "nodes", "list", MEGAM_URL=bare)
        assert listed.returncode == 0, listed.stderr

    @pytest.mark.parametrize("url", ["127.0.0.1:notaport", "ftp://127.0.0.1:21", "http://"])
    def test_a_bad_url_is_one_line_not_a_traceback(self, platform: dict, url: str) -> None:
        listed = cli(platform, "nodes", "list", MEGAM_URL=url)
        assert listed.returncode == 1
        assert "Traceback" not in listed.stderr
        assert len(listed.stderr.strip().splitlines()) == 1, listed.stderr
        assert "not a gateway URL" in listed.stderr

    def test_a_gateway_that_is_not_there_is_named_with_a_hint(self, platform: dict) -> None:
        listed = cli(platform, "nodes", "list", MEGAM_URL=f"127.0.0.1:{free_port()}")
        assert listed.returncode == 1 and "cannot reach the gateway" in listed.stderr
        assert "megam up" in listed.stderr


class TestOutput:
    @pytest.mark.parametrize(
        "args",
        [("nodes", "list"), ("clouds", "list"), ("accounts", "show"), ("search", "running")],
        ids=" ".join,
    )
    def test_json_is_valid_json_with_nothing_else(self, platform: dict, args: tuple) -> None:
        result = cli(platform, *args, "--json")
        assert result.returncode == 0, result.stderr
        json.loads(result.stdout)

    def test_json_also_works_before_the_command(self, platform: dict) -> None:
        result = cli(platform, "--json", "nodes", "list")
        assert isinstance(json.loads(result.stdout), list)

    def test_version(self) -> None:
        result = subprocess.run([MEGAM, "--version"], capture_output=True, text=True, check=True)
        assert re.fullmatch(r"megam \d+\.\d+\.\d+\n", result.stdout)

    def test_a_reader_that_went_away_ends_the_command_quietly(self, platform: dict) -> None:
        """``megam nodes list | head -0``: no traceback, no 'Exception ignored'."""
        reader, writer = os.pipe()
        os.close(reader)
        listed = subprocess.run(
            [MEGAM, "nodes", "list"], env=platform, stdout=writer, stderr=subprocess.PIPE,
            text=True, timeout=60,
        )
        os.close(writer)
        assert listed.returncode == 141
        assert listed.stderr == "", listed.stderr

    def test_following_with_json_is_one_object_per_line(self, platform: dict) -> None:
        result = cli(
            platform, "nodes", "launch", "stream.example.com", "--cloud", "home", "--follow",
            "--json",
        )
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert lines[0]["node_name"] == "stream.example.com" and "job_id" in lines[0]
        assert any("text" in line for line in lines), "the log lines"
        assert lines[-1]["status"] == "RUNNING"


class TestAskingOnATerminal:
    @pytest.mark.parametrize(("answer", "replaced"), [("n", False), ("y", True)])
    def test_accounts_create_asks_before_replacing_a_profile(
        self, platform: dict, answer: str, replaced: bool
    ) -> None:
        email, holder = f"asked-{answer}@example.com", f"held-{answer}@example.com"
        held = cli(platform, "accounts", "create", holder, "--profile", f"ask-{answer}")
        assert held.returncode == 0, held.stderr
        output, code = answer_on_a_terminal(
            [MEGAM, "accounts", "create", email, "--profile", f"ask-{answer}"],
            platform,
            question="replace it?",
            answer=answer,
        )
        assert f"holds {holder}" in output, output
        now = saved(platform)["profiles"][f"ask-{answer}"]["email"]
        assert now == (email if replaced else holder)
        assert code == (0 if replaced else 1), output


def answer_on_a_terminal(
    args: list[str], env: dict[str, str], *, question: str, answer: str
) -> tuple[str, int]:
    """Run ``args`` on a pseudo-terminal, type ``answer`` once ``question`` shows."""
    import pty
    import select
    import time

    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, env=env, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    seen, answered = b"", False
    deadline = time.monotonic() + 60
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.5)[0]:
                try:
                    seen += os.read(leader, 4096)
                except OSError:
                    break
            if not answered and question.encode() in seen:
                os.write(leader, answer.encode() + b"\n")
                answered = True
        code = proc.wait(60)
        while select.select([leader], [], [], 0.2)[0]:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    return seen.decode(errors="replace"), code
