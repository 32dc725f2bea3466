"""The long-lived process a local-cloud node runs: a small HTTP server on 127.0.0.1.

It serves the node's home directory and an nginx ``stub_status``-style page at ``/nginx_status``
with its real connection and request counts (the page Megam's ganglia module polled). It binds an
ephemeral port and writes its port and pid under ``<home>/run/`` once it is listening.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import signal
import threading
from pathlib import Path
from types import FrameType


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accepted = 0
        self.requests = 0
        self.active = 0


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, counters: _Counters) -> None:
        self.counters = counters
        super().__init__(address, handler)

    def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
        with self.counters.lock:
            self.counters.accepted += 1
            self.counters.active += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request):  # type: ignore[no-untyped-def]
        with self.counters.lock:
            self.counters.active -= 1
        super().shutdown_request(request)


class _Handler(http.server.SimpleHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        with self.server.counters.lock:
            self.server.counters.requests += 1
        if self.path.split("?", 1)[0] == "/nginx_status":
            self._stub_status()
        else:
            super().do_GET()

    def _stub_status(self) -> None:
        c = self.server.counters
        with c.lock:
            body = (
                f"Active connections: {c.active} \n"
                "server accepts handled requests\n"
                f" {c.accepted} {c.accepted} {c.requests} \n"
                f"Reading: 0 Writing: {c.active} Waiting: 0 \n"
            ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # stdlib's parameter name
        print(f"{self.address_string()} {format % args}", flush=True)


def serve(home: Path) -> None:
    handler = functools.partial(_Handler, directory=str(home))
    server = _Server(("127.0.0.1", 0), handler, _Counters())  # type: ignore[arg-type]
    run = home / "run"
    run.mkdir(parents=True, exist_ok=True)
    _write_atomically(run / "pid", f"{os.getpid()}\n")
    _write_atomically(run / "port", f"{server.server_address[1]}\n")

    def stop(signum: int, _: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"serving {home} on http://127.0.0.1:{server.server_address[1]}/", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_suffix(".tmp")
    partial.write_text(text)
    partial.replace(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local-cloud node's HTTP server")
    parser.add_argument("--home", type=Path, required=True)
    serve(parser.parse_args(argv).home)


if __name__ == "__main__":
    main()
