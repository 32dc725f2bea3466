"""Gateway benchmark: the signed ``GET /v1/nodes/<name>`` against a plain aiohttp JSON handler in
the same run, ``POST /v1/nodes/content`` (a launch: store + confirmed publish) per second, and a
live tail followed by 100 SSE clients while a job writes 1,000 lines/s.

Run by hand: ``.venv/bin/python -m bench.gateway`` (about a minute; RabbitMQ on 127.0.0.1:5672,
``wrk`` on the PATH). The gateway and the plain handler each run in their own process (the
gateway on a private RabbitMQ vhost and a SQLite file in a temporary directory); the HTTP load
comes from ``wrk``, the tail's followers and the job's output from this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from bench._common import free_port, percentile, private_vhost
from megam import hmac, topology, wire
from megam.bus.amqp import AmqpBus

ROOT = Path(__file__).resolve().parent.parent
SEQ = re.compile(rb'"seq":(\d+)')
NODE = "bench.local"
TAIL_NODE = "tail.local"


# -- the two servers, each in its own process ------------------------------------------------


def serve_plain(port: int) -> None:
    """The reference: aiohttp returning a small JSON object, as fast as aiohttp goes."""
    body = orjson.dumps({"json_claz": "Megam::Node", "node_name": NODE, "status": "RUNNING"})

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    async def make() -> web.Application:
        app = web.Application()
        app.router.add_get("/json", handler)
        return app

    _run_with_uvloop(make(), port)


def serve_gateway(port: int, amqp_url: str, data_dir: str) -> None:
    from cryptography.fernet import Fernet

    from gateway.app import create_app
    from gateway.options import GatewayOptions
    from megam import log
    from megam.config import Settings
    from megam.ids import LocalIdSource
    from megam.secrets import Sealer
    from megam.snowflake import Generator

    log.configure("warning")
    settings = Settings.from_env(data_dir=Path(data_dir))

    async def make() -> web.Application:
        bus = AmqpBus(amqp_url)
        await bus.connect()
        sealer = Sealer(Fernet.generate_key())
        ids = LocalIdSource(Generator(1))
        return create_app(settings, bus, ids, sealer, options=GatewayOptions.from_env())

    _run_with_uvloop(make(), port)


def _run_with_uvloop(make: Any, port: int) -> None:
    import uvloop

    async def serve() -> None:
        runner = web.AppRunner(await make, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print(json.dumps({"event": "listening", "port": port}), file=sys.stderr, flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    uvloop.run(serve())


@contextmanager
def server(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.gateway", *args, "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("{") and json.loads(line).get("event") == "listening":
                threading.Thread(target=process.stderr.read, daemon=True).start()
                break
        else:
            raise RuntimeError(f"server {args[0]} exited with {process.wait()}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


# -- HTTP load with wrk ------------------------------------------------------------------------


def wrk(url: str, seconds: float, *, connections: int, script: str | None = None,
        headers: dict[str, str] | None = None) -> tuple[float, float, str]:  # fmt: skip
    """Requests/s and p99 (ms) of ``url``; raises if any answer was not 2xx."""
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    if script:
        argv += ["-s", script]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw failed requests:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return rate, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], out


def launch_script(email: str, api_key: str, count: int, directory: str) -> str:
    """A wrk Lua script that sends ``count`` different launches, each signed."""
    entries = []
    path = "/v1/nodes/content"
    for i in range(count):
        body = orjson.dumps({"node_name": f"b{i}.local", "predefcloud": "local"})
        signed = hmac.sign_headers(email, api_key, path, body)
        fields = (body.decode(), signed[hmac.HMAC_HEADER], signed[hmac.DATE_HEADER])
        entries.append("{" + ",".join(f"[[{field}]]" for field in fields) + "}")
    script = Path(directory) / "launches.lua"
    script.write_text(
        "local launches = {" + ",\n".join(entries) + "}\n"
        "local threads, n = 0, 0\n"
        "function setup(thread) thread:set('first', threads); threads = threads + 1 end\n"
        "function init(args) n = first end\n"
        "function request()\n"
        "  n = n + 2\n"
        "  local l = launches[(n % #launches) + 1]\n"
        f"  return wrk.format('POST', '{path}', "
        "{['Content-Type']='application/json', "
        f"['{hmac.HMAC_HEADER}']=l[2], ['{hmac.DATE_HEADER}']=l[3]}}, l[1])\n"
        "end\n"
    )
    return str(script)


# -- the account and its nodes ----------------------------------------------------------------


class Client:
    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base, self.session = base, session
        self.email, self.api_key = "", ""

    async def onboard(self) -> None:
        async with self.session.post(
            f"{self.base}/v1/accounts/content", json={"email": "bench@example.com"}
        ) as response:
            account = await response.json()
        self.email, self.api_key = account["email"], account["api_key"]

    def headers(self, path: str, body: bytes = b"") -> dict[str, str]:
        return hmac.sign_headers(self.email, self.api_key, path, body)

    async def post(self, path: str, value: Any) -> Any:
        body = orjson.dumps(value)
        async with self.session.post(
            f"{self.base}{path}", data=body, headers=self.headers(path, body)
        ) as response:
            assert response.status == 201, await response.text()
            return await response.json()

    async def get(self, path: str) -> Any:
        async with self.session.get(f"{self.base}{path}", headers=self.headers(path)) as response:
            assert response.status == 200, await response.text()
            return await response.json()


async def prepare(base: str) -> tuple[str, str, dict[str, Any], str]:
    """An account with a local cloud, the node the GET reads, and the job the tail follows."""
    async with aiohttp.ClientSession() as session:
        client = Client(base, session)
        await client.onboard()
        await client.post(
            "/v1/predefclouds/content", {"name": "local", "spec": {"type_name": "local"}}
        )
        await client.post("/v1/nodes/content", {"node_name": NODE, "predefcloud": "local"})
        [info] = await client.post(
            "/v1/nodes/content", {"node_name": TAIL_NODE, "predefcloud": "local"}
        )
        job = await client.get(f"/v1/jobs/{info['job_id']}")
        account = await client.get(f"/v1/accounts/{client.email}")
        return client.email, client.api_key, {**job, "account": account["id"]}, info["job_id"]


# -- the live tail -------------------------------------------------------------------------------


async def tail(
    base: str, amqp_url: str, email: str, api_key: str, job: dict[str, Any],
    followers: int, lines_per_s: int, seconds: float,
) -> tuple[float, float, int, int]:  # fmt: skip
    """Lines/s delivered (all followers), p99 latency (ms), lines each should get, fewest got."""
    path = hmac.request_target(f"/v1/nodes/{TAIL_NODE}/logs/stream", {"tail": 0, "job": job["id"]})
    total = int(lines_per_s * seconds)
    published: dict[int, float] = {}
    latencies: list[float] = []
    received = [0] * followers
    connector = aiohttp.TCPConnector(limit=followers + 10)
    async with aiohttp.ClientSession(connector=connector) as session:
        responses = [
            await session.get(
                f"{base}{path}",
                headers=hmac.sign_headers(email, api_key, path),
                timeout=aiohttp.ClientTimeout(total=None, sock_read=60),
            )
            for _ in range(followers)
        ]

        async def follow(index: int, response: aiohttp.ClientResponse) -> None:
            pending = b""
            async for chunk in response.content.iter_any():
                now = time.perf_counter()
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    if line.startswith(b'data: {"id"'):
                        seq = orjson.loads(line[6:])["seq"]
                        latencies.append(now - published[seq])
                        received[index] += 1
                if received[index] >= total:
                    return

        readers = [asyncio.create_task(follow(i, r)) for i, r in enumerate(responses)]
        await asyncio.sleep(0.5)  # every follower is past its (empty) replay
        bus = AmqpBus(amqp_url)
        await bus.connect()
        batch = max(1, lines_per_s // 20)  # herk batches output every 50 ms
        started = time.perf_counter()
        for first in range(0, total, batch):
            due = started + first / lines_per_s
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            now = time.perf_counter()
            lines = [
                wire.LogLine(
                    seq=seq, stream="stdout", text=f"line {seq} of a chatty job", at=time.time()
                )
                for seq in range(first, min(first + batch, total))
            ]
            for line in lines:
                published[line.seq] = now
            event = wire.LogEvent(
                job_id=job["id"], node=TAIL_NODE, account=job["account"], attempt=1, lines=lines
            )
            await bus.publish(topology.EVENTS.name, topology.log_key(job["id"]), wire.encode(event))
        try:
            async with asyncio.timeout(60):
                await asyncio.gather(*readers)
        except TimeoutError:
            for reader in readers:
                reader.cancel()
        elapsed = time.perf_counter() - started
        await bus.close()
        for response in responses:
            response.close()
    delivered = sum(received)
    return delivered / elapsed, percentile(latencies, 0.99) * 1000, total, min(received)


# -- the run ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.gateway")
    sub = parser.add_subparsers(dest="command")
    plain = sub.add_parser("serve-plain")
    plain.add_argument("--port", type=int, required=True)
    gw = sub.add_parser("serve-gateway")
    gw.add_argument("--port", type=int, required=True)
    gw.add_argument("--amqp", required=True)
    gw.add_argument("--data", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--followers", type=int, default=100)
    parser.add_argument("--lines-per-s", type=int, default=1000)
    parser.add_argument("--tail-seconds", type=float, default=10.0)
    args = parser.parse_args()
    if args.command == "serve-plain":
        serve_plain(args.port)
    elif args.command == "serve-gateway":
        serve_gateway(args.port, args.amqp, args.data)
    else:
        run(args)


def run(args: argparse.Namespace) -> None:
    with private_vhost() as amqp_url, tempfile.TemporaryDirectory(prefix="megam-bench-gw-") as tmp:
        env = {"MEGAM_LOG_LEVEL": "warning"}
        with (
            server("serve-plain") as plain_url,
            server("serve-gateway", "--amqp", amqp_url, "--data", tmp, env=env) as gateway_url,
        ):
            email, api_key, job, _ = asyncio.run(prepare(gateway_url))
            path = f"/v1/nodes/{NODE}"
            signed = hmac.sign_headers(email, api_key, path)
            # alternate, so that both see the same machine load; best of two each
            plain_rates, get_rates, get_p99 = [], [], []
            for _ in range(2):
                rate, _, _ = wrk(f"{plain_url}/json", args.seconds, connections=32)
                plain_rates.append(rate)
                rate, p99, _ = wrk(
                    f"{gateway_url}{path}", args.seconds, connections=32, headers=signed
                )
                get_rates.append(rate)
                get_p99.append(p99)
            script = launch_script(email, api_key, int(args.seconds * 6000), tmp)
            post_rate, post_p99, _ = wrk(
                f"{gateway_url}/v1/nodes/content", args.seconds, connections=32, script=script
            )
            rate, tail_p99, expected, fewest = asyncio.run(
                tail(gateway_url, amqp_url, email, api_key, job, args.followers,
                     args.lines_per_s, args.tail_seconds)
            )  # fmt: skip
    plain_best, get_best = max(plain_rates), max(get_rates)
    print(f"plain aiohttp JSON handler: {plain_best:,.0f} req/s (runs: {plain_rates})")
    print(
        f"signed GET {path}: {get_best:,.0f} req/s, p99 {min(get_p99):.2f} ms (runs: {get_rates})"
    )
    print(f"POST /v1/nodes/content: {post_rate:,.0f} launches/s, p99 {post_p99:.2f} ms")
    print(
        f"live tail: {args.followers} followers x {args.lines_per_s} lines/s for "
        f"{args.tail_seconds:g} s: {rate:,.0f} lines/s delivered; every follower got "
        f"{fewest}/{expected} lines or more"
    )
    print(f"get/plain: {get_best / plain_best:.2f}")
    print(f"post_rps: {post_rate:.0f}")
    print(f"tail_p99_ms: {tail_p99:.1f}")


if __name__ == "__main__":
    main()
