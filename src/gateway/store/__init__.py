"""Where the gateway keeps its state: one interface (:mod:`.base`), adapters chosen by URL."""

from __future__ import annotations

from pathlib import Path

from gateway.store.base import Conflict, NotStored, Store, StoreError
from gateway.store.records import Retention

SQLITE_PREFIX = "sqlite:///"


def store_for_url(url: str, retention: Retention | None = None) -> Store:
    """The adapter for ``url`` (not yet opened).

    ``sqlite:///megam.db`` is relative to the working directory, ``sqlite:////var/megam.db``
    absolute (SQLAlchemy's convention, which ``Settings`` follows for its default).
    """
    if url.startswith(SQLITE_PREFIX):
        from gateway.store.sqlite import SqliteStore

        path = url.removeprefix(SQLITE_PREFIX)
        if not path or path == ":memory:":
            raise StoreError("a SQLite store needs a file path: sqlite:///path/to/megam.db")
        return SqliteStore(Path(path), retention=retention)
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from gateway.store.mongo import MongoStore

        return MongoStore(url, retention=retention)
    raise StoreError(
        f"unsupported store URL {url!r}; expected sqlite:///path/to/megam.db or mongodb://host/db"
    )


__all__ = ["Conflict", "NotStored", "Store", "StoreError", "store_for_url"]
