"""The node-view cache (``gateway.node_views``): a write drops the views of the nodes it wrote,
and only those; a view read while its node was written is never kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.node_views import CachedView, NodeViews
from gateway.services import SERVICES
from gateway.store import store_for_url
from gateway.store.records import Written


def _view(views: NodeViews, body: bytes = b"{}") -> CachedView:
    return CachedView(body, views.token(), None)


def _wrote(*keys: tuple[str, str]) -> Written:
    return Written(nodes=frozenset(keys))


class TestInvalidation:
    def test_a_write_drops_the_view_of_the_node_it_wrote(self) -> None:
        views = NodeViews()
        views.put("ACT1", "web.local", _view(views))
        views.invalidate(_wrote(("ACT1", "web.local")))
        assert views.get("ACT1", "web.local") is None

    def test_a_write_for_one_tenant_leaves_other_views_in_place(self) -> None:
        views = NodeViews()
        views.put("ACT1", "web.local", _view(views, b"a"))
        views.put("ACT2", "db.local", _view(views, b"b"))
        views.put("ACT1", "db.local", _view(views, b"c"))
        views.invalidate(_wrote(("ACT2", "db.local")))
        assert views.get("ACT2", "db.local") is None
        assert views.get("ACT1", "web.local") == CachedView(b"a", 0, None)
        assert views.get("ACT1", "db.local") is not None  # same name, another account

    def test_a_write_that_names_no_node_drops_every_view(self) -> None:
        views = NodeViews()
        views.put("ACT1", "web.local", _view(views))
        views.invalidate(Written(everything=True))
        assert views.get("ACT1", "web.local") is None


class TestReadsDuringWrites:
    def test_a_view_read_before_a_write_to_its_node_is_not_kept(self) -> None:
        views = NodeViews()
        stale = _view(views)  # the read begins ...
        views.invalidate(_wrote(("ACT1", "web.local")))  # ... a write commits meanwhile ...
        views.put("ACT1", "web.local", stale)  # ... and the view it rendered comes back
        assert views.get("ACT1", "web.local") is None
        views.put("ACT1", "web.local", _view(views))  # read after the write: kept
        assert views.get("ACT1", "web.local") is not None

    def test_a_write_to_another_node_does_not_void_a_read_under_way(self) -> None:
        views = NodeViews()
        view = _view(views)
        views.invalidate(_wrote(("ACT2", "web.local")))
        views.put("ACT1", "web.local", view)
        assert views.get("ACT1", "web.local") is view

    def test_forgetting_old_writes_keeps_the_views_but_voids_reads_under_way(self) -> None:
        views = NodeViews(size=2)
        views.put("ACT1", "kept.local", _view(views))
        under_way = _view(views)
        for name in ("a", "b", "c"):  # more written nodes than the cache remembers
            views.invalidate(_wrote(("ACT2", name)))
        assert views.get("ACT1", "kept.local") is not None
        views.put("ACT1", "other.local", under_way)
        assert views.get("ACT1", "other.local") is None


class TestWatchingAStore:
    def test_the_store_is_the_same_and_its_commits_reach_the_cache(self, tmp_path: Path) -> None:
        store = store_for_url(f"sqlite:///{tmp_path}/views.db")
        views = NodeViews()
        assert views.watching(store) is store
        views.put("ACT1", "web.local", _view(views))
        store._committed(_wrote(("ACT1", "web.local")))
        assert views.get("ACT1", "web.local") is None


class TestThroughTheApi:
    async def test_a_launch_by_another_tenant_leaves_a_cached_view_in_place(
        self, gateway: Any, launched: Any, herk: Any, eventually: Any
    ) -> None:
        api, job = await launched()
        views = gateway.client.app[SERVICES].node_views
        assert (await api.node("web.local"))["status"] == "LAUNCHING"
        cached = views.get(job["account"], "web.local")
        assert cached is not None
        other = await gateway.tenant()
        await other.launch("theirs.local")
        assert views.get(job["account"], "web.local") is cached
        await herk.status(job, "succeeded", seq=1, exit_code=0)

        async def running() -> bool:
            return (await api.node("web.local"))["status"] == "RUNNING"

        await eventually(running)
