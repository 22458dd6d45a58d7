"""A short-lived cache of encrypted connection rows for the hot credential read.

Backends read credentials on every call they make to a provider, so the same rows are
read over and over. The cache holds rows as stored (ciphertext; decrypted per request)
for at most `ttl` seconds (each entry between half and all of it, so expiries spread).
Writes through this process drop the entries at once; writes by other processes or
replicas drop them when their connection event arrives (a few milliseconds), and the
TTL bounds staleness if an event is ever missed. Misses are not cached, so a new
connection is visible at once.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

Key = tuple[int, str, str | None]  # environment, connection id, integration id (or None)

DEFAULT_TTL_SECONDS = 2.0
DEFAULT_MAX_ENTRIES = 50_000


class ConnectionCache:
    """LRU with a TTL, indexed so one connection's entries can be dropped together."""

    def __init__(self, *, ttl: float = DEFAULT_TTL_SECONDS, max_entries: int = DEFAULT_MAX_ENTRIES,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._now = monotonic
        self._entries: OrderedDict[Key, tuple[float, Sequence[Any]]] = OrderedDict()
        # (environment, connection) -> its keys, so a write drops them without a scan.
        self._by_connection: dict[tuple[int, str], set[Key]] = {}
        # Bumped by every invalidation: a read that began before one must not cache what it
        # fetched (it may be the row the write just replaced or deleted).
        self._epoch = 0

    @property
    def epoch(self) -> int:
        """Note it before reading the database; hand it to `put`."""
        return self._epoch

    def get(self, key: Key) -> Sequence[Any] | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        if hit[0] <= self._now():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return hit[1]

    def put(self, key: Key, rows: Sequence[Any], *, read_at: int | None = None) -> None:
        """Cache `rows`, unless a write was announced since `read_at` (an `epoch`)."""
        if not rows or self._ttl <= 0 or (read_at is not None and read_at != self._epoch):
            return
        # Spread expiries: rows cached together must not all miss together and queue up
        # behind a burst of database reads.
        lifetime = self._ttl * (0.5 + random.random() / 2)  # noqa: S311  # timing jitter, not security
        self._entries[key] = (self._now() + lifetime, rows)
        self._entries.move_to_end(key)
        self._by_connection.setdefault(key[:2], set()).add(key)
        while len(self._entries) > self._max:
            self._drop(next(iter(self._entries)))

    def invalidate(self, environment_id: int, connection_id: str) -> None:
        """Drop every entry of a connection (whatever integration the reader named)."""
        self._epoch += 1
        for key in self._by_connection.pop((environment_id, connection_id), set()):
            self._entries.pop(key, None)

    def invalidate_environment(self, environment_id: int) -> None:
        self._epoch += 1
        for key in [k for k in self._entries if k[0] == environment_id]:
            self._drop(key)

    def _drop(self, key: Key) -> None:
        self._entries.pop(key, None)
        keys = self._by_connection.get(key[:2])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_connection[key[:2]]

    def __len__(self) -> int:
        return len(self._entries)
