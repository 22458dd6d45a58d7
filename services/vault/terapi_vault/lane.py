"""A few database connections pinned for the vault's hottest single statements.

Going through the pool costs every call an acquire and a release (the pool's reset is
already cheap: `db.create_pool` only rolls back an open transaction), and the release
runs in a task of its own, so the caller waits a turn of the event loop for it. The
credential read and the connection upsert need neither: each is one prepared statement
outside any explicit transaction that leaves no session state behind, so a few
connections are taken from the pool once and shared by the calls. A statement error
(a constraint, a bad value) leaves its connection usable. A connection that is broken
or interrupted goes back to the pool (which resets or discards it) and its slot is
refilled on next use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg

READ_LANE_MAX = 4
WRITE_LANE_MAX = 2


def lane_sizes(pool_size: int) -> tuple[int, int]:
    """How many connections the read and the write lanes may pin: together at most half
    the pool, so transactions and the outbox relay always find one. 0 means no lane
    (the statements go through the pool)."""
    budget = pool_size // 2
    writes = min(WRITE_LANE_MAX, budget // 2)
    return min(READ_LANE_MAX, budget - writes), writes


class StatementLane:
    """Runs single statements on connections held outside the pool's rotation."""

    def __init__(self, pool: asyncpg.Pool, *, size: int = READ_LANE_MAX) -> None:
        self._pool = pool
        self._size = max(1, size)
        # An empty slot (None) is filled from the pool when a call takes it.
        self._slots: asyncio.Queue[asyncpg.Connection | None] = asyncio.Queue()
        for _ in range(self._size):
            self._slots.put_nowait(None)
        self._retiring: set[asyncio.Task[None]] = set()

    async def fetch(self, query: str, *args: Any,
                    before: Callable[[], None] | None = None) -> list[asyncpg.Record]:
        """The statement's rows; `before` runs once a connection is in hand, right before
        the statement (a write checks there that its caller still waits)."""
        conn = await self._slots.get()
        reusable = False
        try:
            if conn is None:
                conn = await self._pool.acquire()
            if before is not None:
                reusable = True  # nothing has run on the connection yet
                before()
                reusable = False
            rows = await conn.fetch(query, *args)
            reusable = True
            return rows
        except asyncpg.PostgresError:
            # The server refused the statement; the connection itself is fine.
            reusable = conn is not None and not conn.is_closed()
            raise
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
