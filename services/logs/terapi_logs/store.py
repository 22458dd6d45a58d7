"""Operation logs in PostgreSQL: order-independent upserts and keyset-paged search."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import asyncpg

from terapi_common import maintenance
from terapi_logs.domain import OperationRecord, storable
from terapi_logs.query import Cursor, OperationQuery

COLUMNS = (
    "id, kind, operation, status, integration_id, connection_id, provider, auth_mode,"
    " end_user, started_at, ended_at, error"
)

# Events may come in any order and more than once, so the merge is commutative where it
# matters: a finished status is never replaced by `running`, the earliest start wins,
# known facts are not erased by a later event that lacks them, and messages are merged
# without duplicates, in time order (ties keep the order they arrived in).
_UPSERT = """
INSERT INTO logs.operations AS o (
    environment_id, id, kind, operation, status, integration_id, connection_id, provider,
    auth_mode, end_user, started_at, ended_at, error, messages
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (environment_id, id) DO UPDATE SET
    kind = EXCLUDED.kind,
    operation = EXCLUDED.operation,
    status = CASE WHEN EXCLUDED.status = 'running' THEN o.status ELSE EXCLUDED.status END,
    integration_id = COALESCE(EXCLUDED.integration_id, o.integration_id),
    connection_id = COALESCE(EXCLUDED.connection_id, o.connection_id),
    provider = COALESCE(EXCLUDED.provider, o.provider),
    auth_mode = COALESCE(EXCLUDED.auth_mode, o.auth_mode),
    end_user = COALESCE(EXCLUDED.end_user, o.end_user),
    started_at = LEAST(o.started_at, EXCLUDED.started_at),
    ended_at = COALESCE(EXCLUDED.ended_at, o.ended_at),
    error = CASE WHEN EXCLUDED.status = 'running' THEN o.error ELSE EXCLUDED.error END,
    messages = (
        SELECT COALESCE(jsonb_agg(m.value ORDER BY (m.value ->> 'at')::timestamptz, m.first), '[]')
        FROM (
            SELECT value, min(position) AS first
            FROM jsonb_array_elements(o.messages || EXCLUDED.messages)
                WITH ORDINALITY AS e(value, position)
            GROUP BY value
        ) AS m
    ),
    updated_at = now()
"""


class Store(Protocol):
    """What the logs service needs from storage."""

    async def upsert(self, record: OperationRecord) -> None: ...

    async def search(
        self, environment_id: int, query: OperationQuery, after: Cursor | None, *, limit: int
    ) -> list[dict[str, Any]]: ...

    async def get(self, environment_id: int, operation_id: str) -> dict[str, Any] | None: ...


class PgStore:
    """The `Store` on asyncpg."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def prune_operations(self, *, before: datetime,
                               batch: int = maintenance.PRUNE_BATCH) -> int:
        """Drop operations that started before `before` (past the retention period)."""
        return await maintenance.delete_in_batches(
            self._pool, "logs.operations", "started_at < $1", before, batch=batch)

    async def upsert(self, record: OperationRecord) -> None:
        """Merge one event's view of an operation into the stored one."""
        r = storable(record)
        await self._pool.execute(
            _UPSERT, r.environment_id, r.id, r.kind, r.operation, r.status, r.integration_id,
            r.connection_id, r.provider, r.auth_mode, r.end_user, r.started_at, r.ended_at,
            r.error, r.messages,
        )

    async def search(
        self, environment_id: int, query: OperationQuery, after: Cursor | None, *, limit: int
    ) -> list[dict[str, Any]]:
        """Up to `limit` operations matching `query`, newest first, after the cursor."""
        where, args = _conditions(environment_id, query, after)
        args.append(limit)
        sql = (
            f"SELECT {COLUMNS} FROM logs.operations WHERE {' AND '.join(where)}"  # noqa: S608  # fixed conditions; values are parameters
            f" ORDER BY started_at DESC, id DESC LIMIT ${len(args)}"
        )
        return [dict(r) for r in await self._pool.fetch(sql, *args)]

    async def get(self, environment_id: int, operation_id: str) -> dict[str, Any] | None:
        """One operation with its messages."""
        row = await self._pool.fetchrow(
            f"SELECT {COLUMNS}, messages FROM logs.operations"  # noqa: S608  # constant columns
            " WHERE environment_id = $1 AND id = $2",
            environment_id, operation_id,
        )
        return dict(row) if row else None


def _conditions(
    environment_id: int, query: OperationQuery, after: Cursor | None
) -> tuple[list[str], list[Any]]:
    where, args = ["environment_id = $1"], [environment_id]

    def add(template: str, *values: Any) -> None:
        numbers = [f"${len(args) + i + 1}" for i in range(len(values))]
        where.append(template.format(*numbers))
        args.extend(values)

    filters = {
        "integration_id = {}": query.integration_id,
        "connection_id = {}": query.connection_id,
        "status = {}": query.status,
        "kind = {}": query.type,
        "started_at >= {}": query.since,
        "started_at < {}": query.until,
    }
    for template, value in filters.items():
        if value is not None:
            add(template, value)
    if after is not None:
        add("(started_at, id) < ({}, {})", after.started_at, after.id)
    return where, args
