"""The gateway serves the console itself: no build step, no CDN, installed with the package."""

from __future__ import annotations

import fnmatch
import re
import tomllib
import urllib.request
from pathlib import Path

from gateway.console import STATIC
from tests.console.conftest import Gateway

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_every_console_file_is_installed_with_the_package() -> None:
    globs = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]
    patterns = globs["gateway.console"]
    files = [path.relative_to(STATIC.parent).as_posix() for path in STATIC.rglob("*.*")]
    assert files
    missing = [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"


def test_the_page_and_its_assets_come_from_the_gateway_only(gateway: Gateway) -> None:
    with urllib.request.urlopen(gateway.url + "/", timeout=5) as response:
        html = response.read().decode()
        policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "nothing loads from elsewhere"
    for asset in re.findall(r"(?:src|href)=\"(/console/[^\"]+)\"", html):
        with urllib.request.urlopen(gateway.url + asset, timeout=5) as response:
            assert response.status == 200, asset


def test_script_modules_import_only_their_siblings() -> None:
    for script in STATIC.rglob("*.js"):
        for source in re.findall(r"^import .* from \"([^\"]+)\";", script.read_text(), re.M):
            assert source.startswith("./") or source.startswith("../"), f"{script}: {source}"
            assert (script.parent / source).resolve().is_file(), f"{script}: {source}"
