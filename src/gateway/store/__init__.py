"""Where the gateway keeps its state: one interface (:mod:`.base`), adapters chosen by URL."""

from __future__ import annotations

from pathlib import Path

from gateway.store.base import Conflict, Store, StoreError

SQLITE_PREFIX = "sqlite:///"


def store_for_url(url: str) -> Store:
    """The adapter for ``url`` (not yet opened).

    ``sqlite:///megam.db`` is relative to the working directory, ``sqlite:////var/megam.db``
    absolute (SQLAlchemy's convention, which ``Settings`` follows for its default).
    """
    if url.startswith(SQLITE_PREFIX):
        from gateway.store.sqlite import SqliteStore

        path = url.removeprefix(SQLITE_PREFIX)
        if not path or path == ":memory:":
            raise StoreError("a SQLite store needs a file path: sqlite:///path/to/megam.db")
        return SqliteStore(Path(path))
    if url.startswith(("mongodb://", "mongodb+srv://")):
        raise StoreError("the MongoDB store is not available yet; use sqlite:///path/to/megam.db")
    raise StoreError(f"unsupported store URL {url!r}; expected sqlite:///path/to/megam.db")


__all__ = ["Conflict", "Store", "StoreError", "store_for_url"]
