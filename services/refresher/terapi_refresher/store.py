"""The refresher's schedule of expiring credentials (schema `refresher`)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import asyncpg

from terapi_common import db
from terapi_common.events import Event

SCHEMA = "refresher"


class Store(Protocol):
    async def track(self, event: Event, *, consumer: str, integration_id: str,
                    connection_id: str, expires_at: datetime | None,
                    next_refresh_at: datetime | None) -> None: ...

    async def forget(self, event: Event, *, consumer: str, integration_id: str,
                     connection_id: str) -> None: ...

    async def due(self, environment_id: int, *, until: datetime) -> list[str]: ...


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

    @staticmethod
    async def _delete(conn: asyncpg.Connection, environment_id: int, integration_id: str,
                      connection_id: str) -> None:
        await conn.execute(
            "DELETE FROM refresher.schedules WHERE environment_id = $1 AND integration_id = $2"
            " AND connection_id = $3",
            environment_id, integration_id, connection_id,
        )
