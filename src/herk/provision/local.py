"""The local cloud: launch and delete a node on the herk host itself, for real.

    python -m herk.provision.local create --node N --home DIR [--run-list role[web],recipe[x]]
    python -m herk.provision.local delete --node N --home DIR

``create`` makes the node's home, applies the run list, starts the node's process (a small HTTP
server in a session of its own, so it outlives this job) and waits until it answers over HTTP.
The local cloud applies run lists as files, one per role or recipe: it is not Chef, and it says
so. ``create`` is idempotent: a node that already answers is left running. ``delete`` stops the
process (SIGTERM to its group, SIGKILL after a grace) and removes the home; a node that is already
gone is not an error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from megam.procfs import stat_fields

START_TIMEOUT = 15.0
STOP_GRACE = 5.0


def say(text: str) -> None:
    print(text, flush=True)


def create(node: str, home: Path, run_list: list[str]) -> int:
    say(f"local cloud: launching node {node} on this host (a process, not a virtual machine)")
    home.mkdir(parents=True, exist_ok=True)
    say(f"node home: {home}")
    apply_run_list(home, node, run_list)
    url = running_url(home)
    if url is not None:
        say(f"node {node} is already running at {url} (pid {read_int(home / 'run' / 'pid')})")
        return 0
    pid = start_server(home)
    say(f"started the node's HTTP server, pid {pid}; waiting for it to answer")
    url = wait_until_answering(home, pid)
    if url is None:
        print(
            f"node {node} did not answer within {START_TIMEOUT:g} s; see {log_path(home)}",
            file=sys.stderr,
            flush=True,
        )
        stop_server(home)
        return 1
    say(f"node {node} is running at {url} (pid {pid})")
    return 0


def delete(node: str, home: Path) -> int:
    if not home.exists():
        say(f"node {node}: nothing to delete, {home} is already gone")
        return 0
    say(f"local cloud: deleting node {node}")
    stop_server(home)
    shutil.rmtree(home)
    say(f"removed {home}")
    say(f"node {node} deleted")
    return 0


def apply_run_list(home: Path, node: str, run_list: list[str]) -> None:
    applied = home / "run_list"
    applied.mkdir(exist_ok=True)
    if not run_list:
        say("run list is empty: nothing to apply")
    for item in run_list:
        kind, _, name = item.partition("[")
        name = name.rstrip("]")
        target = applied / f"{kind}-{name.replace('::', '-')}.txt"
        target.write_text(
            f"{item} applied to {node} at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
            "The local cloud applies run lists as files; it is not Chef.\n"
        )
        say(f"applied {item} -> {target.relative_to(home)}")
    (home / "index.html").write_text(
        f"<html><body><h1>{node}</h1><p>A Megam local-cloud node.</p><ul>"
        + "".join(f"<li>{item}</li>" for item in run_list)
        + "</ul></body></html>\n"
    )


def start_server(home: Path) -> int:
    run = home / "run"
    run.mkdir(exist_ok=True)
    for stale in ("pid", "port"):
        (run / stale).unlink(missing_ok=True)
    with open(log_path(home), "ab") as server_log:
        # A session of its own: the node outlives this job, whose process group herk kills.
        process = subprocess.Popen(
            [sys.executable, "-m", "herk.provision.node_server", "--home", str(home)],
            stdin=subprocess.DEVNULL,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    return process.pid


def wait_until_answering(home: Path, pid: int) -> str | None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not alive(pid):
            return None
        url = running_url(home)
        if url is not None:
            return url
        time.sleep(0.05)
    return None


def running_url(home: Path) -> str | None:
    """The node's URL if its server answers /nginx_status, else None."""
    port = read_int(home / "run" / "port")
    pid = read_int(home / "run" / "pid")
    if port is None or pid is None or not alive(pid):
        return None
    url = f"http://127.0.0.1:{port}/"
    try:
        with urllib.request.urlopen(f"{url}nginx_status", timeout=2) as response:  # noqa: S310
            return url if response.status == 200 else None
    except (urllib.error.URLError, OSError):
        return None


def stop_server(home: Path) -> None:
    pid = read_int(home / "run" / "pid")
    if pid is None or not alive(pid) or not is_node_server(pid):
        say("the node's process is not running")
        return
    os.killpg(pid, signal.SIGTERM)
    say(f"sent SIGTERM to the node's process group {pid}")
    deadline = time.monotonic() + STOP_GRACE
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        os.killpg(pid, signal.SIGKILL)
        say(f"the node's process ignored SIGTERM for {STOP_GRACE:g} s: sent SIGKILL")
    say("the node's process has stopped")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes (it is our own child in tests and in herk).
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def is_node_server(pid: int) -> bool:
    """Guard against a recycled pid: only signal what really is a node server."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"herk.provision.node_server" in cmdline


def read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def log_path(home: Path) -> Path:
    return home / "run" / "server.log"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Megam's local cloud")
    parser.add_argument("action", choices=["create", "delete"])
    parser.add_argument("--node", required=True)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--run-list", default="", help="comma-separated, e.g. role[web]")
    args = parser.parse_args(argv)
    if args.action == "create":
        items = [item for item in args.run_list.split(",") if item]
        return create(args.node, args.home, items)
    return delete(args.node, args.home)


if __name__ == "__main__":
    sys.exit(main())
