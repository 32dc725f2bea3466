"""Rendered ``GET /v1/nodes/<name>`` answers, kept until the store next changes a node or a job.

The hot read of the API (clients poll a launching node) then costs no store round trip and no
rendering. Validity is a write generation: every store call that can change a node view bumps it
once it has returned, and an entry is used only while the generation it was read under is the
current one, so a view is never older than the last completed write. Views that explain why a
job waits also depend on the cluster snapshot they were rendered with (refreshed every second).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

from gateway.store import Store

NODE_VIEW_WRITES: Final = frozenset(
    {
        "add_launches",
        "add_launch_groups",
        "add_request",
        "update_node",
        "cancel_job",
        "outbox_sent",
        "outbox_sent_all",
        "outbox_failed",
        "apply_status",
        "purge",
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class CachedView:
    body: bytes
    generation: int
    cluster_taken_at: float | None
    """The cluster snapshot the waiting reason came from; None when no job of the node waits."""


class NodeViews:
    def __init__(self, size: int = 10_000) -> None:
        self.generation = 0
        self._size = size
        self._entries: dict[tuple[str, str], CachedView] = {}

    def get(self, account_id: str, name: str) -> CachedView | None:
        entry = self._entries.get((account_id, name))
        return entry if entry is not None and entry.generation == self.generation else None

    def put(self, account_id: str, name: str, view: CachedView) -> None:
        if len(self._entries) >= self._size:
            self._entries.clear()  # stale ones pile up under writes; start afresh
        self._entries[(account_id, name)] = view

    def watching(self, store: Store) -> Store:
        """``store``, with every node-changing write bumping the generation when it returns."""
        return cast(Store, _Watched(store, self))


class _Watched:
    __slots__ = ("_inner", "_views")

    def __init__(self, inner: Store, views: NodeViews) -> None:
        self._inner = inner
        self._views = views

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in NODE_VIEW_WRITES:
            return attr
        write = cast(Callable[..., Awaitable[Any]], attr)
        views = self._views

        async def bumping(*args: Any, **kwargs: Any) -> Any:
            try:
                return await write(*args, **kwargs)
            finally:
                views.generation += 1

        return bumping
