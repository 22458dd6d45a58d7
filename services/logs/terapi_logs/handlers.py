"""Use cases: index operation events, and search and read operations."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from terapi_common.errors import NotFoundError
from terapi_common.events import (
    OperationFinished,
    OperationStarted,
    WebhookAbandoned,
    WebhookDelivered,
)
from terapi_common.logging import redact
from terapi_logs import domain
from terapi_logs.domain import OperationRecord
from terapi_logs.query import Cursor, OperationQuery, encode_cursor
from terapi_logs.store import Store


async def on_operation_started(event: OperationStarted, *, store: Store) -> None:
    """Show the attempt as running (unless its end is already known)."""
    await _record(store, domain.from_started(event))


async def on_operation_finished(event: OperationFinished, *, store: Store) -> None:
    """Record the attempt's outcome and every message logged along the way."""
    await _record(store, domain.from_finished(event))


async def on_webhook_outcome(event: WebhookDelivered | WebhookAbandoned, *, store: Store) -> None:
    """Record a webhook delivery as an operation of kind `webhook`."""
    await _record(store, domain.from_webhook(event))


async def _record(store: Store, record: OperationRecord) -> None:
    # The last line of defence: a secret in a message's text or meta never reaches the table.
    messages = [redact(m) for m in record.messages]
    await store.upsert(replace(record, messages=messages))


async def search_operations(
    store: Store, environment_id: int, query: OperationQuery, after: Cursor | None
) -> dict[str, Any]:
    """One page of matching operations and the cursor of the next, if any."""
    rows = await store.search(environment_id, query, after, limit=query.limit + 1)
    page, more = rows[: query.limit], len(rows) > query.limit
    last = page[-1] if page else None
    next_cursor = encode_cursor(last["started_at"], last["id"]) if more and last else None
    return {"data": [domain.summary(r) for r in page], "next_cursor": next_cursor}


async def read_operation(store: Store, environment_id: int, operation_id: str) -> dict[str, Any]:
    """One operation with its messages, or `operation_not_found`."""
    row = await store.get(environment_id, operation_id)
    if row is None:
        raise NotFoundError(f"no operation {operation_id!r}", code="operation_not_found")
    return domain.detail(row)
