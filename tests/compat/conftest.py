"""The original Ruby client (megam_api, 2014, unmodified) against a real ``megam up``.

The gem comes from ``shared/vendor`` (``MEGAM_SHARED_DIR``, default ``../shared`` beside the
project) and is unpacked into a temporary directory for the run; it is never committed. What it
needs of its era is supplied here (``shims.rb``, ``nilavu.yml``), never by editing it. In CI
(``CI`` or ``MEGAM_TEST_REQUIRE_RUBY`` set, as ``.ci/run`` does) a missing Ruby, Debian package
or gem fails the suite; elsewhere it is skipped, saying what is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (  # noqa: F401 - megam_env and processes are fixtures used here
    Processes,
    megam_env,
    megam_environment,
    processes,
    wait_http,
)

HERE = Path(__file__).parent
SHARED = Path(os.environ.get("MEGAM_SHARED_DIR", HERE.parents[2] / "shared"))
GEM_TARBALL = SHARED / "vendor" / "megam_api-233b137.tar.gz"
DEBIAN_PACKAGES = " ".join((HERE / "debian-packages.txt").read_text().split())
"""What the gem needs of Debian (.ci/run installs the same list)."""
SANDBOX_EMAIL = "tom@gomegam.com"
SANDBOX_API_KEY = "IamAtlas{74}NobodyCanSeeME#07"
"""The gem's own test account: its api key has characters a stricter gateway refused."""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") or os.environ.get("MEGAM_TEST_REQUIRE_RUBY"):
        pytest.fail(f"the original client cannot run in CI: {reason}")
    pytest.skip(f"the original client cannot run here: {reason}")


@pytest.fixture(scope="session")
def gem_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The gem's lib/, unpacked from the vendored tarball, loadable with the harness's shims."""
    if shutil.which("ruby") is None:
        _unavailable(f"no ruby on PATH (apt-get install {DEBIAN_PACKAGES})")
    if not GEM_TARBALL.is_file():
        _unavailable(f"{GEM_TARBALL} is missing (set MEGAM_SHARED_DIR to the shared/ directory)")
    root = tmp_path_factory.mktemp("megam_api")
    with tarfile.open(GEM_TARBALL) as tar:
        tar.extractall(root, filter="data")
    lib = next(root.glob("megam_api-*/lib"))
    loads = subprocess.run(
        ["ruby", "-I", str(lib), "-r", str(HERE / "shims.rb"), "-e", "require 'megam_api'"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if loads.returncode != 0:
        _unavailable(
            f"the gem does not load ({loads.stderr.strip().splitlines()[0]}); "
            f"apt-get install {DEBIAN_PACKAGES}"
        )
    return lib


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    """``megam up`` (gateway, herk, uid; embedded bus, SQLite) on free ports, one per module."""
    root = tmp_path_factory.mktemp("megam")
    (root / "logs").mkdir()
    procs = Processes(megam_environment(root), root / "logs")
    try:
        procs.start("up", "up", "--workers", "2")
        wait_http(procs.env["MEGAM_URL"] + "/healthz")
        yield procs
    finally:
        procs.stop_all()


class Gem:
    """Runs steps through the gem (``driver.rb``) as one account, the way nilavu did."""

    def __init__(self, lib: Path, gateway: Processes, home: Path, email: str, api_key: str):
        self.lib = lib
        self.gateway = gateway
        self.home = home
        self.email = email
        self.api_key = api_key

    def run(self, *steps: dict[str, Any], crash: str = "") -> list[dict[str, Any]]:
        """Each step's outcome; a step that crashes the gem fails the test, unless ``crash``."""
        results = self.home / "results.json"
        script = {"email": self.email, "api_key": self.api_key, "steps": list(steps)}
        done = subprocess.run(
            ["ruby", "-I", str(self.lib), str(HERE / "driver.rb"), str(results)],
            input=json.dumps(script),
            capture_output=True,
            text=True,
            timeout=120,
            env={
                **os.environ,
                "MEGAM_HOME": str(self.home),
                "MEGAM_COMPAT_PORT": self.gateway.env["MEGAM_PORT"],
            },
        )
        assert done.returncode == 0, done.stdout + done.stderr
        answers: list[dict[str, Any]] = json.loads(results.read_text())
        results.unlink()  # it holds what the gateway answered, api keys included
        for answer in answers:
            assert answer.get("crash", crash) == crash, answer
        return answers

    def call(self, name: str, *args: Any, crash: str = "") -> dict[str, Any]:
        return self.run({"call": name, "args": list(args)}, crash=crash)[0]

    def build(self, builder: str, action: str, data: dict[str, Any]) -> dict[str, Any]:
        return self.run({"build": builder, "group": "server", "action": action, "data": data})[0]

    def node_reaching(self, name: str, statuses: set[str], timeout: float = 120) -> dict[str, Any]:
        """The node as the gem reads it (``get_node``), once its status is one of ``statuses``."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.call("get_node", name)
            node = shown["body"]["items"][0]
            if node["status"] in statuses or time.monotonic() > deadline:
                return node
            time.sleep(0.5)


def nilavu_home(root: Path) -> Path:
    """``$MEGAM_HOME`` with the ``nilavu.yml`` the gem reads its host from (plain http)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "nilavu.yml").write_text("api:\n  host: 127.0.0.1\n  scheme: http\n")
    return root


@pytest.fixture
def gem_for(gem_lib: Path, gateway: Processes, tmp_path: Path) -> Any:
    """``gem_for(email, api_key)``: the gem signing as that account (not onboarded)."""

    def make(email: str = SANDBOX_EMAIL, api_key: str = SANDBOX_API_KEY) -> Gem:
        return Gem(gem_lib, gateway, nilavu_home(tmp_path / email), email, api_key)

    return make


@pytest.fixture
def gem(gem_for: Any, request: pytest.FixtureRequest) -> Gem:
    """The gem as a new account of its own, onboarded by the gem with the sandbox api key."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    email = f"{slug}-{uuid.uuid4().hex[:6]}@gomegam.com"
    signed = gem_for(email)
    onboarded = signed.call("post_accounts", {"email": email, "api_key": SANDBOX_API_KEY})
    assert onboarded["status"] == 201, onboarded
    return signed


def message(answer: dict[str, Any]) -> dict[str, Any]:
    """The ``Megam::Error`` of a refusal, or the first message of a 201 array."""
    body = answer["body"]
    first = body[0] if isinstance(body, list) else body
    assert first["claz"] == "Megam::Error", answer
    return first["some_msg"]
