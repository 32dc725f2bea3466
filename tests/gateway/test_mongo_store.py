"""What only the MongoDB store does: TTL indexes expire old log lines by themselves, and the
whole gateway runs on ``--store mongodb://…`` (the contract suite covers the store's calls)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gateway.app import create_app
from gateway.options import GatewayOptions
from gateway.store import store_for_url
from gateway.store.records import (
    Account,
    CloudTarget,
    Job,
    Launch,
    Node,
    OutboxEntry,
    Retention,
)
from megam import wire
from megam.ids import LocalIdSource
from megam.snowflake import Generator

LOCAL = CloudTarget(name="local", cctype="local", spec={}, access={})


def _launch(account_id: str) -> Launch:
    now = time.time()
    node = Node(
        id="NOD1", account_id=account_id, name="ttl.local", node_type="APP", status="LAUNCHING",
        cloud=LOCAL, command={}, predefs={}, defns_encrypted=None, created_at=now, updated_at=now,
    )  # fmt: skip
    job = Job(
        id="RIP1", account_id=account_id, node_id="NOD1", node_name="ttl.local",
        req_type="create", job_type="local.create", params={}, state="queued", reason="",
        exit_code=None, attempt=0, seq=0, herk="", correlation_id="c", published=True,
        created_at=now, updated_at=now,
    )  # fmt: skip
    entry = OutboxEntry(
        job_id="RIP1", routing_key="job.x", body=b"{}", correlation_id="c", attempts=0, due_at=now
    )
    return Launch(node=node, job=job, outbox=entry)


async def test_the_ttl_index_expires_old_lines_without_a_purge(mongo_url: str) -> None:
    store = store_for_url(mongo_url, Retention(log_seconds=60, job_seconds=3600))
    await store.open()
    try:
        await store.add_account(
            Account(id="ACT1", email="t@example.com", api_key_encrypted="k", authority="user",
                    created_at=1.0)
        )  # fmt: skip
        await store.add_launches([_launch("ACT1")])
        lines = [
            wire.LogLine(seq=0, stream="stdout", text="from long ago", at=time.time() - 3600),
            wire.LogLine(seq=1, stream="stdout", text="today", at=time.time()),
        ]
        event = wire.LogEvent(
            job_id="RIP1", node="ttl.local", account="ACT1", attempt=1, lines=lines
        )
        assert (await store.add_log_lines(event)).stored == 2
        async with asyncio.timeout(20):  # the server sweeps every 0.5 s
            while len(await store.log_lines("ACT1", "NOD1")) > 1:
                await asyncio.sleep(0.2)
        [kept] = await store.log_lines("ACT1", "NOD1")
        assert kept.text == "today"
    finally:
        await store.close()


async def test_the_gateway_runs_on_mongodb(
    aiohttp_client: Any, embedded_bus: Any, settings: Any, sealer: Any, mongo_url: str,
    signed: Any, eventually: Any,
) -> None:  # fmt: skip
    app = create_app(
        settings, embedded_bus, LocalIdSource(Generator(1)), sealer, mongo_url,
        options=GatewayOptions(),
    )  # fmt: skip
    client = await aiohttp_client(app)
    response = await client.post("/v1/accounts/content", json={"email": "mongo@example.com"})
    account = await response.json()
    api = signed(client, account["email"], account["api_key"])
    await api.add_local_cloud()
    [job_id] = await api.launch("mongo.local")
    job = await api.job(job_id)
    assert (job["state"], job["node_name"]) == ("queued", "mongo.local")
    assert (await client.get("/readyz")).status == 200
