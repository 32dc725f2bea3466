"""Signature checks need the account and its api key on every request; keep them briefly.

Megam's gateway cached account lookups for 5 minutes (docs/original.md §9). Here the entry
lives ``ttl`` seconds (30 by default) and only hits are cached, so a new account is usable at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from gateway.store.records import Account


class AccountCache:
    def __init__(
        self, *, ttl: float = 30.0, size: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Account, str]] = OrderedDict()

    def get(self, email: str) -> tuple[Account, str] | None:
        """(account, api key in clear), if cached and fresh."""
        entry = self._entries.get(email)
        if entry is None:
            return None
        expires, account, api_key = entry
        if expires < self._clock():
            del self._entries[email]
            return None
        return account, api_key

    def put(self, account: Account, api_key: str) -> None:
        self._entries[account.email] = (self._clock() + self._ttl, account, api_key)
        self._entries.move_to_end(account.email)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


class SignatureCache:
    """Body-less requests whose signature was verified, with the api key it matched.

    A client polling ``GET /v1/nodes/<name>`` sends the same signature for a minute (the date
    has minute resolution); recomputing the HMAC each time is most of the check's cost. A hit
    needs the exact (email, algorithm, date, signature, path) and the api key the account has
    now, so it accepts nothing the full check would refuse.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._entries: dict[tuple[str, ...], str] = {}

    def get(self, key: tuple[str, ...]) -> str | None:
        return self._entries.get(key)

    def put(self, key: tuple[str, ...], api_key: str) -> None:
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[key] = api_key
