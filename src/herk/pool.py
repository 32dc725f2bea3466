"""The master's worker actors, and its own supervision of them (pykka has none).

Each slot holds one :class:`~herk.worker.JobWorker` and a ``death`` future that the actor's
``on_failure`` completes from its thread. A dead or stuck worker is replaced in its slot; the pool
can grow and shrink at runtime (a shrinking slot retires when its current job ends).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pykka

from herk.bridge import LoopBridge

WorkerFactory = Callable[[int, Callable[[BaseException | None], None]], pykka.ActorRef[Any]]
"""``factory(number, on_death)`` starts a worker actor and returns its ref."""


class Slot:
    def __init__(self, number: int) -> None:
        self.number = number
        self.ref: pykka.ActorRef[Any] | None = None
        self.death: asyncio.Future[BaseException | None] | None = None
        self.busy = False
        self.retiring = False
        self.generation = 0


class WorkerPool:
    def __init__(self, size: int, factory: WorkerFactory, bridge: LoopBridge) -> None:
        self._factory = factory
        self._bridge = bridge
        self._slots: list[Slot] = []
        self._changed = asyncio.Condition()
        self._waiting = 0
        self._next_number = 1
        self.replacements = 0
        for _ in range(size):
            self._slots.append(self._start(Slot(self._take_number())))

    @property
    def size(self) -> int:
        return sum(1 for slot in self._slots if not slot.retiring)

    @property
    def slots(self) -> tuple[Slot, ...]:
        return tuple(self._slots)

    @property
    def busy(self) -> int:
        return sum(1 for slot in self._slots if slot.busy)

    def try_acquire(self) -> Slot | None:
        """A free worker, now, or None."""
        for slot in self._slots:
            if not slot.busy and not slot.retiring:
                slot.busy = True
                if slot.ref is None or not slot.ref.is_alive():
                    self.restart(slot)  # died while idle (pykka's stop_all, say)
                return slot
        return None

    async def acquire(self) -> Slot:
        async with self._changed:
            self._waiting += 1
            try:
                while (slot := self.try_acquire()) is None:
                    await self._changed.wait()
                return slot
            finally:
                self._waiting -= 1

    async def release(self, slot: Slot) -> None:
        slot.busy = False
        if slot.retiring:
            self._retire(slot)
        if self._waiting:  # else nobody to wake: no lock to take
            async with self._changed:
                self._changed.notify_all()

    async def replace(self, slot: Slot) -> None:
        """Give ``slot`` a fresh actor and free it: its old one died or is stuck (abandoned)."""
        self.restart(slot)
        await self.release(slot)

    def restart(self, slot: Slot) -> None:
        """Give a busy ``slot`` a fresh actor, keeping it busy."""
        if slot.ref is not None and slot.ref.is_alive():
            slot.ref.stop(block=False)
        self.replacements += 1
        self._start(slot)

    async def resize(self, size: int) -> None:
        async with self._changed:
            active = [slot for slot in self._slots if not slot.retiring]
            for _ in range(size - len(active)):
                self._slots.append(self._start(Slot(self._take_number())))
            for slot in reversed(active[size:] if size < len(active) else []):
                slot.retiring = True
                if not slot.busy:
                    self._retire(slot)
            self._changed.notify_all()

    def stop(self) -> None:
        for slot in self._slots:
            if slot.ref is not None and slot.ref.is_alive():
                slot.ref.stop(block=False)
        self._slots.clear()

    def _start(self, slot: Slot) -> Slot:
        loop = asyncio.get_running_loop()
        death: asyncio.Future[BaseException | None] = loop.create_future()
        slot.death = death
        slot.generation += 1
        slot.ref = self._factory(slot.number, self._bridge.resolver(death))
        return slot

    def _retire(self, slot: Slot) -> None:
        if slot.ref is not None and slot.ref.is_alive():
            slot.ref.stop(block=False)
        self._slots.remove(slot)

    def _take_number(self) -> int:
        number = self._next_number
        self._next_number += 1
        return number
