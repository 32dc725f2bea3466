"""Rendered ``GET /v1/nodes/<name>`` answers, kept until the store next writes that node.

The hot read of the API (clients poll a launching node) then costs no store round trip and no
rendering. The store says, after each committed transaction, which nodes it wrote (a node, or
one of its jobs; :meth:`gateway.store.Store.listen`), and exactly those views are dropped: a
write for one tenant leaves every other view in place. A view read while a write to its node
was committing could be older than that write, so :meth:`NodeViews.put` refuses a view whose
read began before the node's last write. Views that explain why a job waits also depend on the
cluster snapshot they were rendered with (refreshed every second).
"""

from __future__ import annotations

import dataclasses

from gateway.store import Store
from gateway.store.records import Written

Key = tuple[str, str]
"""``(account_id, node name)``."""


@dataclasses.dataclass(frozen=True, slots=True)
class CachedView:
    body: bytes
    read_from: int
    """:meth:`NodeViews.token` taken before the store read this view came from."""
    cluster_taken_at: float | None
    """The cluster snapshot the waiting reason came from; None when no job of the node waits."""


class NodeViews:
    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._entries: dict[Key, CachedView] = {}
        self._writes = 0
        """Counts invalidations: the clock of :meth:`token`."""
        self._written_at: dict[Key, int] = {}
        """The clock at each node's last write (pruned; :attr:`_all_written_at` covers the rest)."""
        self._all_written_at = 0

    def watching(self, store: Store) -> Store:
        """``store``, whose committed writes now drop the views of the nodes they wrote."""
        store.listen(self.invalidate)
        return store

    def token(self) -> int:
        """Take before reading a view from the store; the view carries it to :meth:`put`."""
        return self._writes

    def get(self, account_id: str, name: str) -> CachedView | None:
        return self._entries.get((account_id, name))

    def put(self, account_id: str, name: str, view: CachedView) -> None:
        key = (account_id, name)
        last_write = max(self._written_at.get(key, 0), self._all_written_at)
        if last_write > view.read_from:
            return  # the node was written while the view was read: it may be older
        if len(self._entries) >= self._size:
            self._entries.clear()  # views of nodes no one asks for any more pile up; start afresh
        self._entries[key] = view

    def invalidate(self, written: Written) -> None:
        self._writes += 1
        if written.everything:
            self._entries.clear()
        for key in written.nodes:
            self._entries.pop(key, None)
            self._written_at[key] = self._writes
        if written.everything or len(self._written_at) > self._size:
            # forgetting which nodes were written when voids only the reads under way
            self._written_at.clear()
            self._all_written_at = self._writes
