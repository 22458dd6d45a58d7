"""A few database connections pinned for the hot credential read.

Going through the pool costs every request an acquire and a release (the pool's reset
is already cheap: `db.create_pool` only rolls back an open transaction). The read needs
neither: it is one prepared SELECT outside any transaction and leaves no session state
behind, so a few connections are taken from the pool once and shared by all reads
on cache misses. A connection that fails or is interrupted goes
back to the pool (which resets or discards it) and its slot is refilled on next use.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

DEFAULT_SIZE = 4


class ReadLane:
    """Runs single read-only statements on connections held outside the pool's rotation."""

    def __init__(self, pool: asyncpg.Pool, *, size: int = DEFAULT_SIZE) -> None:
        self._pool = pool
        self._size = max(1, size)
        # An empty slot (None) is filled from the pool when a read takes it.
        self._slots: asyncio.Queue[asyncpg.Connection | None] = asyncio.Queue()
        for _ in range(self._size):
            self._slots.put_nowait(None)
        self._retiring: set[asyncio.Task[None]] = set()

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await self._slots.get()
        reusable = False
        try:
            if conn is None:
                conn = await self._pool.acquire()
            rows = await conn.fetch(query, *args)
            reusable = True
            return rows
        finally:
            if reusable:
                self._slots.put_nowait(conn)
            else:
                self._slots.put_nowait(None)
                if conn is not None:
                    self._retire(conn)

    def _retire(self, conn: asyncpg.Connection) -> None:
        # Released in the background: the pool waits out a cancelled query, then resets.
        task = asyncio.ensure_future(self._pool.release(conn))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def close(self, *, timeout: float = 10.0) -> None:
        """Give every held connection back to the pool (after in-flight reads finish)."""
        for _ in range(self._size):
            try:
                conn = await asyncio.wait_for(self._slots.get(), timeout)
            except TimeoutError:
                break
            if conn is not None:
                await self._pool.release(conn)
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
