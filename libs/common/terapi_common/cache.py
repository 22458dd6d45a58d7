"""A small in-process TTL cache for facts that other services own.

Entries expire after `ttl` seconds; owners announce changes with events, and the
subscriber calls `forget` so a change shows at once, the TTL bounding any miss. A lookup
that may race with a change notes `epoch` before asking the owner and hands it to `put`,
so an answer older than the announcement is not kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Value = TypeVar("Value")


class TtlCache(Generic[Value]):
    """Bounded mapping whose entries expire; cleared whole when full (cheap and rare)."""

    def __init__(self, *, ttl: float, max_entries: int = 10_000,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._now = monotonic
        self._entries: dict[Hashable, tuple[float, Value]] = {}
        self._epoch = 0

    @property
    def epoch(self) -> int:
        """Bumped by every `forget` and `clear`."""
        return self._epoch

    def get(self, key: Hashable) -> Value | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        if hit[0] <= self._now():
            self._entries.pop(key, None)
            return None
        return hit[1]

    def put(self, key: Hashable, value: Value, *, read_at: int | None = None) -> None:
        """Keep `value`, unless something was forgotten since `read_at` (an `epoch`)."""
        if self._ttl <= 0 or (read_at is not None and read_at != self._epoch):
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (self._now() + self._ttl, value)

    def forget(self, key: Hashable) -> None:
        self._epoch += 1
        self._entries.pop(key, None)

    def forget_where(self, matches: Callable[[Value], bool]) -> None:
        """Drop every entry whose value `matches` (a scan: for rare announcements)."""
        self._epoch += 1
        for key in [k for k, (_, value) in self._entries.items() if matches(value)]:
            del self._entries[key]

    def clear(self) -> None:
        self._epoch += 1
        self._entries.clear()
