"""A user who installs the built wheel (not the source tree) gets a working platform: the job
catalogue and the console's files travel inside it."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.e2e.conftest import Processes
from tests.e2e.test_embedded import wait_for_output

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = sorted(path.name for path in (ROOT / "actors").glob("*.toml"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # built from a copy: a build writes build/ and egg-info next to the sources it reads
    source = tmp_path_factory.mktemp("source")
    for part in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / part, source / part)
    for part in ("src", "actors"):
        shutil.copytree(ROOT / part, source / part, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)],
        check=True,
        timeout=300,
    )
    [built] = out.glob("megam-*.whl")
    return built


def test_the_wheel_holds_the_catalogue_and_the_console(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n.rsplit("/", 1)[1] for n in names if "/data/share/megam/actors/" in n)
    assert shipped == CATALOGUE
    assert "gateway/console/static/index.html" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/"))]


def test_megam_up_from_the_installed_wheel_runs_the_demo(
    wheel: Path, tmp_path: Path, processes: Processes
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, timeout=600
    )
    megam = str(venv / "bin" / "megam")
    # run from elsewhere, so nothing can be found through the source tree
    up = subprocess.Popen(
        [megam, "up", "--demo"],
        env=processes.env,
        cwd=tmp_path,
        stdout=open(processes.logs / "wheel.log", "wb"),  # noqa: SIM115 - lives with the process
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    processes.running.append(up)

    output = wait_for_output(processes, "wheel", "demo1.megam.local: ", up)

    assert "demo1.megam.local: RUNNING" in output, output
    with urllib.request.urlopen(processes.env["MEGAM_URL"] + "/", timeout=10) as page:
        assert b"/console/js/app.js" in page.read()
    assert processes.stop(up, signal.SIGINT) == 0
