"""The refresher's schedule of expiring credentials (schema `refresher`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import asyncpg

from terapi_common import db, maintenance
from terapi_common.events import Event

SCHEMA = "refresher"
# Forgets renewed credentials held for a write-back.
_NO_PENDING = ("pending_sealed = NULL, pending_version = NULL, pending_expires_at = NULL, "
               "pending_held_at = NULL")


@dataclass(frozen=True)
class PendingWrite:
    """Renewed credentials the vault has not confirmed yet, sealed for transit."""

    sealed_credentials: str
    replaces_version: int  # the vault version these credentials were renewed from
    expires_at: datetime | None


@dataclass(frozen=True)
class DueRefresh:
    """A connection whose credentials are due for a refresh, claimed by this replica."""

    environment_id: int
    integration_id: str
    connection_id: str
    attempts: int
    pending: PendingWrite | None = None
    notified: bool = False

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

    async def hold_pending(self, item: DueRefresh, pending: PendingWrite) -> None: ...

    async def drop_pending(self, item: DueRefresh) -> None: ...

    async def record_success(self, item: DueRefresh, *, next_refresh_at: datetime | None,
                             events: Sequence[Event]) -> None: ...

    async def record_failure(self, item: DueRefresh, *, attempts: int, notified: bool,
                             next_refresh_at: datetime | None,
                             events: Sequence[Event]) -> None: ...

    def exclusive(self, key: str) -> AsyncIterator[bool]: ...


class PgStore:
    """Schedules in PostgreSQL; each write records the event it came from, once."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def track(self, event: Event, *, consumer: str, integration_id: str,
                    connection_id: str, expires_at: datetime | None,
                    next_refresh_at: datetime | None) -> None:
        """Follow a connection event, unless a newer one has already set the schedule."""
        if expires_at is None or next_refresh_at is None:
            expires_at = next_refresh_at = None
        async with self._pool.acquire() as conn, conn.transaction():
            if await db.claim_event(conn, SCHEMA, consumer, event):
                await self._follow(conn, event, integration_id, connection_id,
                                   expires_at=expires_at, next_refresh_at=next_refresh_at)

    async def forget(self, event: Event, *, consumer: str, integration_id: str,
                     connection_id: str) -> None:
        """Stop refreshing a deleted connection, unless it was created again since."""
        async with self._pool.acquire() as conn, conn.transaction():
            if await db.claim_event(conn, SCHEMA, consumer, event):
                await self._follow(conn, event, integration_id, connection_id,
                                   expires_at=None, next_refresh_at=None)

    async def prune_tombstones(self, *, before: datetime) -> int:
        """Forget connections no longer refreshed since before `before`: a late event about
        them only has to be outranked for as long as a redelivery can take."""
        return await maintenance.delete_in_batches(
            self._pool, "refresher.schedules", "next_refresh_at IS NULL AND updated_at < $1",
            before)

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
            " RETURNING s.environment_id, s.integration_id, s.connection_id, s.attempts,"
            " s.notified, s.pending_sealed, s.pending_version, s.pending_expires_at",
            now, lease, limit,
        )
        return [_due_refresh(r) for r in rows]

    async def hold_pending(self, item: DueRefresh, pending: PendingWrite) -> None:
        """Keep renewed credentials until the vault confirms them."""
        await self._pool.execute(
            "UPDATE refresher.schedules SET pending_sealed = $4, pending_version = $5,"
            " pending_expires_at = $6, pending_held_at = now(), updated_at = now()"
            " WHERE environment_id = $1 AND integration_id = $2 AND connection_id = $3",
            *_key(item), pending.sealed_credentials, pending.replaces_version,
            pending.expires_at,
        )

    async def drop_pending(self, item: DueRefresh) -> None:
        await self._pool.execute(
            f"UPDATE refresher.schedules SET {_NO_PENDING}, updated_at = now()"  # noqa: S608  # fixed text
            " WHERE environment_id = $1 AND integration_id = $2 AND connection_id = $3",
            *_key(item),
        )

    async def record_success(self, item: DueRefresh, *, next_refresh_at: datetime | None,
                             events: Sequence[Event]) -> None:
        """The vault has the renewed credentials: reschedule and queue the events, together."""
        await self._reschedule(item, next_refresh_at, events,
                               f"attempts = 0, notified = false, {_NO_PENDING}")

    async def record_failure(self, item: DueRefresh, *, attempts: int, notified: bool,
                             next_refresh_at: datetime | None,
                             events: Sequence[Event]) -> None:
        """Back off (held credentials stay held) or stop; queue the events, together."""
        await self._reschedule(item, next_refresh_at, events,
                               "attempts = $5, notified = $6", attempts, notified)

    async def _reschedule(self, item: DueRefresh, next_refresh_at: datetime | None,
                          events: Sequence[Event], sets: str, *values: Any) -> None:
        """Move the next refresh to `next_refresh_at` with `sets` (parameters from $5), or
        stop refreshing without one; the events commit with it."""
        async with self._pool.acquire() as conn, conn.transaction():
            if next_refresh_at is None:
                await self._stop(conn, *_key(item))
            else:
                await conn.execute(
                    f"UPDATE refresher.schedules SET next_refresh_at = $4, {sets},"  # noqa: S608  # fixed text from this module
                    " updated_at = now()"
                    " WHERE environment_id = $1 AND integration_id = $2 AND connection_id = $3"
                    " AND next_refresh_at IS NOT NULL",  # deleted meanwhile: stays deleted
                    *_key(item), next_refresh_at, *values,
                )
            await db.add_to_outbox(conn, SCHEMA, events)

    @asynccontextmanager
    async def exclusive(self, key: str) -> AsyncIterator[bool]:
        """Hold a PostgreSQL advisory lock on `key` if free: one refresh per connection."""
        async with self._pool.acquire() as conn:
            held = await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key)
            try:
                yield bool(held)
            finally:
                if held:
                    await _unlock(conn, key)

    @staticmethod
    async def _follow(conn: asyncpg.Connection, event: Event, integration_id: str,
                      connection_id: str, *, expires_at: datetime | None,
                      next_refresh_at: datetime | None) -> None:
        # Without next_refresh_at the row stays as a tombstone that outranks older events.
        # Credentials held for a write-back yield to any connection change made after
        # they were held: a re-created connection starts again at version 1, so the
        # vault's version check alone would not stop them.
        await conn.execute(
            "INSERT INTO refresher.schedules AS s (environment_id, integration_id, connection_id,"
            " expires_at, next_refresh_at, source_occurred_at) VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (environment_id, integration_id, connection_id) DO UPDATE SET"
            " expires_at = EXCLUDED.expires_at, next_refresh_at = EXCLUDED.next_refresh_at,"
            " source_occurred_at = EXCLUDED.source_occurred_at, attempts = 0, notified = false,"
            " pending_sealed = CASE WHEN s.pending_held_at < $6 THEN NULL"
            "   ELSE s.pending_sealed END,"
            " pending_version = CASE WHEN s.pending_held_at < $6 THEN NULL"
            "   ELSE s.pending_version END,"
            " pending_expires_at = CASE WHEN s.pending_held_at < $6 THEN NULL"
            "   ELSE s.pending_expires_at END,"
            " pending_held_at = CASE WHEN s.pending_held_at < $6 THEN NULL"
            "   ELSE s.pending_held_at END,"
            " updated_at = now()"
            " WHERE s.source_occurred_at IS NULL OR s.source_occurred_at <= $6",
            event.environment_id, integration_id, connection_id, expires_at, next_refresh_at,
            event.occurred_at,
        )

    @staticmethod
    async def _stop(conn: asyncpg.Connection, environment_id: int, integration_id: str,
                    connection_id: str) -> None:
        # A tombstone rather than a delete, so the row still outranks older events.
        await conn.execute(
            f"UPDATE refresher.schedules SET next_refresh_at = NULL, {_NO_PENDING},"  # noqa: S608  # fixed text
            " updated_at = now()"
            " WHERE environment_id = $1 AND integration_id = $2 AND connection_id = $3",
            environment_id, integration_id, connection_id,
        )


def _key(item: DueRefresh) -> tuple[int, str, str]:
    return item.environment_id, item.integration_id, item.connection_id


def _due_refresh(row: asyncpg.Record) -> DueRefresh:
    pending = None
    if row["pending_sealed"] is not None:
        pending = PendingWrite(row["pending_sealed"], row["pending_version"],
                               row["pending_expires_at"])
    return DueRefresh(row["environment_id"], row["integration_id"], row["connection_id"],
                      row["attempts"], pending=pending, notified=row["notified"])


async def _unlock(conn: asyncpg.Connection, key: str) -> None:
    """Release the refresh lock. The pool's reset does not release advisory locks, so a
    session that may still hold one (the unlock failed or was cancelled) is closed
    instead of going back to the pool, where it would block this connection's refreshes
    for as long as it lives; closing it makes the server release the lock."""
    try:
        await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)
    except BaseException:
        conn.terminate()
        raise
