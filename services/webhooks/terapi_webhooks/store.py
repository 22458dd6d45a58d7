"""Webhook deliveries in PostgreSQL: creation with dedupe, claiming with leases, outcomes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import asyncpg

from terapi_common import maintenance
from terapi_common.db import add_to_outbox, claim_event, prune_processed_events
from terapi_common.events import Event
from terapi_common.text import without_nul
from terapi_webhooks.domain import Delivery, NewDelivery, Outcome

SCHEMA = "webhooks"
CONSUMER = "webhooks.deliveries"


class Store(Protocol):
    """What the webhooks service needs from storage."""

    async def add_deliveries(
        self, event: Event, deliveries: list[NewDelivery], *, now: datetime
    ) -> int: ...

    async def claim_due(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[Delivery]: ...

    async def record(self, delivery: Delivery, outcome: Outcome) -> bool: ...


class PgStore:
    """The `Store` on asyncpg."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def prune_finished(self, *, before: datetime,
                             batch: int = maintenance.PRUNE_BATCH) -> int:
        """Drop delivered and abandoned webhooks created before `before`; pending ones stay
        whatever their age, their retries are still due."""
        return await maintenance.delete_in_batches(
            self._pool, "webhooks.deliveries", "status <> 'pending' AND created_at < $1",
            before, batch=batch)

    async def prune(self, *, finished_before: datetime, handled_before: datetime) -> int:
        """Both housekeeping jobs of the service: old webhooks and old dedupe records."""
        return (await self.prune_finished(before=finished_before)
                + await prune_processed_events(self._pool, SCHEMA, before=handled_before))

    async def add_deliveries(
        self, event: Event, deliveries: list[NewDelivery], *, now: datetime
    ) -> int:
        """Create the event's webhooks once; returns how many rows are new (0 on a replay)."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await claim_event(conn, SCHEMA, CONSUMER, event):
                return 0
            if not deliveries:
                return 0
            rows = await conn.fetch(
                "INSERT INTO webhooks.deliveries (webhook_id, environment_id, source_event_id,"
                " url, payload, next_attempt_at)"
                " SELECT d.webhook_id, $1, $2, d.url, d.payload, $3"
                " FROM unnest($4::text[], $5::text[], $6::jsonb[]) AS d(webhook_id, url, payload)"
                " ON CONFLICT (source_event_id, url) DO NOTHING RETURNING webhook_id",
                event.environment_id, event.event_id, now,
                [d.webhook_id for d in deliveries], [d.url for d in deliveries],
                # A NUL would fail the insert and lose every webhook of the event.
                [without_nul(d.payload) for d in deliveries],
            )
        return len(rows)

    async def claim_due(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[Delivery]:
        """Take up to `limit` due webhooks, leased until `lease_until` so a crash gives them back.

        Spans every environment on purpose: this is the work queue, not a read for a caller.
        """
        rows = await self._pool.fetch(
            "UPDATE webhooks.deliveries AS d SET next_attempt_at = $2"
            " FROM (SELECT webhook_id FROM webhooks.deliveries"
            "        WHERE status = 'pending' AND next_attempt_at <= $1"
            "        ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) AS due"
            " WHERE d.webhook_id = due.webhook_id"
            " RETURNING d.webhook_id, d.environment_id, d.source_event_id, d.url, d.payload,"
            " d.attempts",
            now, lease_until, limit,
        )
        return [Delivery(**dict(r)) for r in rows]

    async def record(self, delivery: Delivery, outcome: Outcome) -> bool:
        """Save an attempt's outcome and queue its event; False if another worker was first."""
        async with self._pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                "UPDATE webhooks.deliveries SET status = $3, attempts = $4,"
                " next_attempt_at = COALESCE($5, next_attempt_at), last_status_code = $6,"
                " last_error = $7, delivered_at = $8"
                " WHERE environment_id = $1 AND webhook_id = $2"
                " AND status = 'pending' AND attempts = $9",
                delivery.environment_id, delivery.webhook_id, outcome.status, outcome.attempts,
                outcome.next_attempt_at, outcome.status_code, outcome.error,
                outcome.delivered_at, delivery.attempts,
            )
            if status != "UPDATE 1":
                return False
            if outcome.event is not None:
                await add_to_outbox(conn, SCHEMA, [outcome.event])
        return True

    async def get(self, environment_id: int, webhook_id: str) -> dict[str, Any] | None:
        """One delivery row as stored, for operators and tests."""
        row = await self._pool.fetchrow(
            "SELECT * FROM webhooks.deliveries WHERE environment_id = $1 AND webhook_id = $2",
            environment_id, webhook_id,
        )
        return dict(row) if row else None

    async def for_event(self, environment_id: int, source_event_id: Any) -> list[dict[str, Any]]:
        """The webhooks an event produced."""
        rows = await self._pool.fetch(
            "SELECT * FROM webhooks.deliveries WHERE environment_id = $1"
            " AND source_event_id = $2 ORDER BY created_at, webhook_id",
            environment_id, source_event_id,
        )
        return [dict(r) for r in rows]
