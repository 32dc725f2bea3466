"""An operator stops ``megam up`` while RabbitMQ cannot be reached: it stops, it does not hang.

Every goodbye to the broker (a consumer's cancel, the draining and final heartbeats) would
otherwise wait for a reconnection that is not coming; the process must give those up at once,
since the broker drops a dead connection's consumers and hands back its unacked messages itself.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request

from tests.e2e.conftest import Processes, megam_env, processes, wait_http  # noqa: F401


def answers_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def test_megam_up_stops_cleanly_while_the_broker_is_unreachable(
    processes: Processes,  # noqa: F811
    amqp_url: str,
) -> None:
    processes.env["MEGAM_AMQP_URL"] = amqp_url
    up = processes.start("up", "up")
    ready = processes.env["MEGAM_URL"] + "/readyz"
    wait_http(ready)
    vhost = amqp_url.rsplit("/", 1)[1]
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=True, timeout=60)
    try:
        deadline = time.monotonic() + 30
        while answers_ready(ready) and time.monotonic() < deadline:
            time.sleep(0.2)  # until the gateway itself sees the broker gone

        # stop() sends SIGTERM, then SIGKILL if the process is still alive after the timeout
        exit_code = processes.stop(up, timeout=30)

        log = processes.log("up")
        assert exit_code == 0, log[-3000:]
        assert "heartbeat.skipped" in log  # herk gave up its goodbye heartbeats
        assert '"gateway.stopped"' in log
    finally:
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, timeout=60)
