"""Reliably: a broker operation repeated until it is done, unless the node is shutting down."""

from __future__ import annotations

import pytest

from herk.reliably import Reliably
from megam.bus import BusError


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise BusError("RabbitMQ unavailable")
        return "confirmed"


async def test_an_operation_is_repeated_until_the_broker_does_it() -> None:
    operation = Flaky(failures=3)
    assert await Reliably(first=0.001, cap=0.002)(operation) == "confirmed"
    assert operation.calls == 4


async def test_a_node_shutting_down_gets_the_error_instead_of_waiting() -> None:
    reliably = Reliably(first=0.001, cap=0.002)
    reliably.giving_up = True
    operation = Flaky(failures=1)
    with pytest.raises(BusError, match="unavailable"):
        await reliably(operation)
    assert operation.calls == 1


async def test_an_error_that_is_not_the_bus_s_is_not_retried() -> None:
    async def broken() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        await Reliably(first=0.001, cap=0.002)(broken)
