"""Bounded memories a herk node keeps about jobs it does not hold: cancels and recent outcomes.

Both are in memory, per node: a cancel reaches every node through ``control.all``, and an outcome
is remembered so that a request redelivered after a lost ack is answered, not run again.
"""

from __future__ import annotations

import collections
from typing import Generic, TypeVar

V = TypeVar("V")


class BoundedMemory(Generic[V]):
    """A dict that forgets its oldest entries beyond ``limit``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: collections.OrderedDict[str, V] = collections.OrderedDict()

    def remember(self, key: str, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def get(self, key: str) -> V | None:
        return self._items.get(key)

    def forget(self, key: str) -> V | None:
        return self._items.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)
