"""The refresher's schedule of expiring credentials (schema `refresher`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import asyncpg

from terapi_common import db
from terapi_common.events import Event

SCHEMA = "refresher"


@dataclass(frozen=True)
class DueRefresh:
    """A connection whose credentials are due for a refresh, claimed by this replica."""

    environment_id: int
    integration_id: str
    connection_id: str
    attempts: int

    @property
    def lock_key(self) -> str:
        return f"refresh:{self.environment_id}:{self.integration_id}:{self.connection_id}"


class Store(Protocol):
    async def track(self, event: Event, *, consumer: str, integration_id: str,
                    connection_id: str, expires_at: datetime | None,
                    next_refresh_at: datetime | None) -> None: ...

    async def forget(self, event: Event, *, consumer: str, integration_id: str,
                     connection_id: str) -> None: ...

    async def due(self, environment_id: int, *, until: datetime) -> list[str]: ...

    async def claim_due(self, *, now: datetime, lease: timedelta, limit: int
                        ) -> list[DueRefresh]: ...

    async def reschedule(self, item: DueRefresh, *, next_refresh_at: datetime | None,
                         attempts: int) -> None: ...

    def exclusive(self, key: str) -> AsyncIterator[bool]: ...


class PgStore:
    """Schedules in PostgreSQL; each write records the event it came from, once."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def track(self, event: Event, *, consumer: str, integration_id: str,
                    connection_id: str, expires_at: datetime | None,
                    next_refresh_at: datetime | None) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            if not await db.claim_event(conn, SCHEMA, consumer, event):
                return
            if expires_at is None or next_refresh_at is None:
                await self._delete(conn, event.environment_id, integration_id, connection_id)
                return
            await conn.execute(
                "INSERT INTO refresher.schedules (environment_id, integration_id, connection_id,"
                " expires_at, next_refresh_at) VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT (environment_id, integration_id, connection_id) DO UPDATE SET"
                " expires_at = EXCLUDED.expires_at, next_refresh_at = EXCLUDED.next_refresh_at,"
                " attempts = 0, updated_at = now()",
                event.environment_id, integration_id, connection_id, expires_at, next_refresh_at,
            )

    async def forget(self, event: Event, *, consumer: str, integration_id: str,
                     connection_id: str) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            if await db.claim_event(conn, SCHEMA, consumer, event):
                await self._delete(conn, event.environment_id, integration_id, connection_id)

    async def due(self, environment_id: int, *, until: datetime) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT connection_id FROM refresher.schedules WHERE environment_id = $1"
            " AND next_refresh_at <= $2 ORDER BY next_refresh_at",
            environment_id, until,
        )
        return [r["connection_id"] for r in rows]

    async def claim_due(self, *, now: datetime, lease: timedelta, limit: int
                        ) -> list[DueRefresh]:
        """Take up to `limit` due rows; pushing them `lease` ahead hides them from others."""
        rows = await self._pool.fetch(
            "WITH due AS (SELECT environment_id, integration_id, connection_id"
            "  FROM refresher.schedules WHERE next_refresh_at <= $1"
            "  ORDER BY next_refresh_at LIMIT $3 FOR UPDATE SKIP LOCKED)"
            " UPDATE refresher.schedules s SET next_refresh_at = $1 + $2, updated_at = now()"
            " FROM due WHERE s.environment_id = due.environment_id"
            " AND s.integration_id = due.integration_id AND s.connection_id = due.connection_id"
            " RETURNING s.environment_id, s.integration_id, s.connection_id, s.attempts",
            now, lease, limit,
        )
        return [DueRefresh(r["environment_id"], r["integration_id"], r["connection_id"],
                           r["attempts"]) for r in rows]

    async def reschedule(self, item: DueRefresh, *, next_refresh_at: datetime | None,
                         attempts: int) -> None:
        if next_refresh_at is None:
            async with self._pool.acquire() as conn:
                await self._delete(conn, item.environment_id, item.integration_id,
                                   item.connection_id)
            return
        await self._pool.execute(
            "UPDATE refresher.schedules SET next_refresh_at = $4, attempts = $5,"
            " updated_at = now() WHERE environment_id = $1 AND integration_id = $2"
            " AND connection_id = $3",
            item.environment_id, item.integration_id, item.connection_id, next_refresh_at,
            attempts,
        )

    @asynccontextmanager
    async def exclusive(self, key: str) -> AsyncIterator[bool]:
        """Hold a PostgreSQL advisory lock on `key` if free: one refresh per connection."""
        async with self._pool.acquire() as conn:
            held = await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key)
            try:
                yield bool(held)
            finally:
                if held:
                    await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)

    @staticmethod
    async def _delete(conn: asyncpg.Connection, environment_id: int, integration_id: str,
                      connection_id: str) -> None:
        await conn.execute(
            "DELETE FROM refresher.schedules WHERE environment_id = $1 AND integration_id = $2"
            " AND connection_id = $3",
            environment_id, integration_id, connection_id,
        )
