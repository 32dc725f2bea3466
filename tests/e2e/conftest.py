"""Running real ``megam`` processes, as a user would, and driving them with the real CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

MEGAM = str(Path(sys.executable).with_name("megam"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Starts service processes with one environment and stops them all at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str, **extra_env: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(
            [MEGAM, *args],
            env={**self.env, **extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append(proc)
        return proc

    def stop(
        self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 40
    ) -> int:
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait(10)

    def stop_all(self) -> None:
        for proc in reversed(self.running):
            self.stop(proc)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MEGAM, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )


def saved_account(procs: Processes) -> dict[str, str]:
    """The account the CLI saved last (its current profile in the credentials file)."""
    saved = json.loads(Path(procs.env["MEGAM_CREDENTIALS"]).read_text())
    return saved["profiles"][saved["current"]]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout}s")
        time.sleep(0.2)


@pytest.fixture
def megam_env(tmp_path: Path) -> dict[str, str]:
    return megam_environment(tmp_path)


def megam_environment(root: Path) -> dict[str, str]:
    """An environment with its own data dir, ports and credentials file, all under ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEGAM_")}
    port = free_port()
    env.update(
        HOME=str(root / "home"),
        MEGAM_DATA_DIR=str(root / "data"),
        MEGAM_CREDENTIALS=str(root / "home" / "credentials.json"),
        MEGAM_PORT=str(port),
        MEGAM_URL=f"http://127.0.0.1:{port}",
        MEGAM_UID_PORT=str(free_port()),
        MEGAM_HERK_METRICS_PORT=str(free_port()),
        MEGAM_LOG_LEVEL="info",
        MEGAM_HERK_SAMPLE_SECONDS="0.5",
    )
    env["MEGAM_UID_URL"] = f"http://127.0.0.1:{env['MEGAM_UID_PORT']}"
    return env


@pytest.fixture
def processes(megam_env: dict[str, str], tmp_path: Path) -> Iterator[Processes]:
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = Processes(megam_env, logs)
    try:
        yield procs
    finally:
        with contextlib.suppress(Exception):
            procs.stop_all()
        stop_local_nodes(Path(megam_env["MEGAM_DATA_DIR"]))


def stop_local_nodes(data_dir: Path) -> None:
    """Local nodes are processes that outlive ``megam up``: a test leaves none behind.

    Only a process whose command line names the node's home is stopped (a pid can be reused)."""
    for pid_file in data_dir.glob("nodes/*/*/run/pid"):
        home = str(pid_file.parent.parent)
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if home in cmdline:
                os.kill(pid, signal.SIGTERM)
