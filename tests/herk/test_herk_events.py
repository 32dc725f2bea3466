"""What herk puts on the request side: the next attempt, a request handed back, a dead letter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest
from herk_testkit import QueueLog, job_request

from herk.events import RequestPublisher
from megam import topology, wire
from megam.bus import Bus, Delivery
from megam.bus.embedded import EmbeddedBus


@pytest.fixture
async def bus() -> AsyncIterator[Bus]:
    instance = EmbeddedBus()
    await instance.connect()
    await instance.declare(topology.EXCHANGES, topology.HERK_QUEUES)
    yield instance
    await instance.close()


async def delivered(bus: Bus, queue: str, request: wire.JobRequest, **headers: object) -> Delivery:
    """The request as herk receives it from ``herk.requests``."""
    log = await QueueLog().attach(bus, queue)
    await bus.publish(
        topology.REQUESTS.name,
        topology.request_key(request.type),
        wire.encode(request),
        message_id=request.job_id,
        headers=dict(headers),
    )
    [delivery] = await log.wait_for(1)
    return delivery


async def test_the_next_attempt_carries_its_number_and_when_it_is_due(bus: Bus) -> None:
    log = await QueueLog().attach(bus, topology.HERK_REQUESTS.name)
    following = msgspec.structs.replace(job_request("noop"), attempt=2)
    await RequestPublisher(bus, "h1").next_attempt(following, 1_700_000_000_000)
    [delivery] = await log.wait_for(1)

    assert delivery.message_id == f"{following.job_id}.2"
    assert delivery.headers[wire.NOT_BEFORE_HEADER] == 1_700_000_000_000
    assert wire.decode(delivery.body, wire.JobRequest).attempt == 2


async def test_a_request_handed_back_keeps_its_headers_and_names_the_node(bus: Bus) -> None:
    request = job_request("noop")
    original = await delivered(bus, topology.HERK_REQUESTS.name, request, trace="t-1")
    log = await QueueLog().attach(bus, topology.HERK_REQUESTS.name)
    await RequestPublisher(bus, "h1").hand_back(original, request.type)
    [copy] = await log.wait_for(1)

    assert copy.body == original.body and copy.message_id == request.job_id
    assert (copy.headers["trace"], copy.headers[wire.HANDED_BACK_HEADER]) == ("t-1", "h1")


async def test_a_dead_letter_says_why_and_who_and_drops_broker_headers(bus: Bus) -> None:
    request = job_request("noop")
    original = await delivered(
        bus, topology.HERK_REQUESTS.name, request, trace="t-1", **{"x-death": "old"}
    )
    dead = await QueueLog().attach(bus, topology.HERK_REQUESTS_DEAD.name)
    await RequestPublisher(bus, "h1").dead_letter(original, "why " * 1000)
    [letter] = await dead.wait_for(1)

    assert letter.body == original.body and "x-death" not in letter.headers
    assert letter.headers["trace"] == "t-1" and letter.headers[wire.HERK_HEADER] == "h1"
    assert len(letter.headers[wire.REASON_HEADER]) == 2000
