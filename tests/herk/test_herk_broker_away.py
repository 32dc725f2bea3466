"""A herk node that loses RabbitMQ for several times its publish timeout while jobs print: the jobs
run to their end, their lines and outcomes reach the broker once it is back, in full and once.

In process, through a TCP relay the test takes away (tests/faults/tcp_proxy.py), with the node's
bus set to give up a publish after 2 s: an outage of 7 s is three and a half publish timeouts.
tests/faults/test_broker_outage.py does the same with a real ``python -m herk`` and 60 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from herk_testkit import EventLog, job_request, submit, write_actor

from megam.bus import Bus
from megam.bus.amqp import AmqpBus
from tests.faults.tcp_proxy import TcpProxy

OUTAGE_SECONDS = 7.0
LINES = 40
CHATTY = Path(__file__).resolve().parent / "jobs" / "chatty.py"


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


@pytest.fixture
def actors(tmp_path: Path, runs: Path) -> Path:
    """Two jobs printing a line every 0.2 s for 8 s: one held until its outcome, one acked on
    acceptance (not idempotent)."""
    directory = tmp_path / "actors"
    argv = (
        f'["{{python}}", "{CHATTY}", "--runs", "{runs}", "--job", "{{job_id}}", '
        f'"--lines", "{LINES}", "--pause", "0.2"]'
    )
    for name, idempotent in (("test.chatty", "true"), ("test.chatty_once", "false")):
        write_actor(
            directory,
            name,
            f'description = "prints for 8 s"\nidempotent = {idempotent}\ntimeout = 60\n'
            f"argv = {argv}\n",
        )
    return directory


@pytest.fixture
async def proxied(amqp_url: str) -> AsyncIterator[tuple[TcpProxy, AmqpBus]]:
    proxy = await TcpProxy.start(amqp_url)
    bus = AmqpBus(proxy.url, publish_timeout=2)
    await bus.connect()
    yield proxy, bus
    await bus.close()
    await proxy.close()


async def test_jobs_printing_through_an_outage_end_succeeded_once_with_every_line(
    rabbit: Bus, proxied: tuple[TcpProxy, AmqpBus], start_herk, actors: Path, runs: Path
) -> None:
    proxy, herk_bus = proxied
    events = await EventLog().attach(rabbit)
    await start_herk(herk_bus, actors_dir=actors, workers=2)
    held = await submit(rabbit, job_request("test.chatty"))
    accepted = await submit(rabbit, job_request("test.chatty_once"))
    jobs = [held.job_id, accepted.job_id]
    await events.wait_until(
        lambda: all(any(line.text == "line 2" for line in events.lines(j)) for j in jobs),
        "both jobs printing",
    )

    await proxy.outage()
    await asyncio.sleep(OUTAGE_SECONDS)
    proxy.heal()

    for job in jobs:
        done = await events.terminal(job, timeout=60)
        assert (done.state, done.reason) == ("succeeded", ""), job
    await events.wait_until(
        lambda: all(f"line {LINES - 1}" in events.text(j) for j in jobs), "every line"
    )
    for job in jobs:
        endings = {(e.state, e.attempt, e.seq) for e in events.status_of(job) if e.state.terminal}
        # the held job's request may come back after the cut: it is answered, not run again
        assert endings == {("succeeded", 1, 2)}, job
        assert sum(1 for _ in runs.glob(f"{job}.*")) == 1, f"{job} ran once"
        texts = {line.text for line in events.lines(job)}
        assert {f"line {n}" for n in range(LINES)} <= texts, job
