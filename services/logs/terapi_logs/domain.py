"""What an operation log holds, built from events, and how clients see it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from terapi_common.events import (
    LogMessage,
    OperationFinished,
    OperationStarted,
    WebhookAbandoned,
    WebhookDelivered,
)
from terapi_common.text import without_nul

OperationStatus = Literal["running", "success", "failed"]

SUMMARY_FIELDS = (
    "id", "type", "operation", "status", "integration_id", "connection_id", "provider",
    "auth_mode", "end_user", "started_at", "ended_at", "duration_ms", "error",
)


@dataclass(frozen=True)
class OperationRecord:
    """One event's view of an operation, to be merged into what is stored."""

    environment_id: int
    id: str
    kind: str
    operation: str
    status: OperationStatus
    started_at: datetime
    integration_id: str | None = None
    connection_id: str | None = None
    provider: str | None = None
    auth_mode: str | None = None
    end_user: dict[str, Any] | None = None
    ended_at: datetime | None = None
    error: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)


def from_started(event: OperationStarted) -> OperationRecord:
    """A running operation."""
    return OperationRecord(
        environment_id=event.environment_id, id=event.operation_id, kind=event.kind,
        operation=event.operation, status="running", started_at=event.started_at,
        **_subject(event),
        messages=[m.model_dump(mode="json") for m in event.messages],
    )


def from_finished(event: OperationFinished) -> OperationRecord:
    """A finished operation; without a start time its end stands in until the start arrives."""
    return OperationRecord(
        environment_id=event.environment_id, id=event.operation_id, kind=event.kind,
        operation=event.operation, status=event.status,
        started_at=event.started_at or event.ended_at, ended_at=event.ended_at,
        error=event.error.model_dump(mode="json") if event.error else None,
        **_subject(event),
        messages=[m.model_dump(mode="json") for m in event.messages],
    )


def from_webhook(event: WebhookDelivered | WebhookAbandoned) -> OperationRecord:
    """A webhook's delivery as an operation of kind `webhook`, finished when the event says."""
    at = event.occurred_at
    if isinstance(event, WebhookDelivered):
        status: OperationStatus = "success"
        error = None
        line = _message(at, "info", f"delivered on attempt {event.attempt}",
                        url=event.url, status_code=event.status_code)
    else:
        status = "failed"
        error = {"code": "webhook_abandoned", "message": event.last_error}
        line = _message(at, "error", f"abandoned after {event.attempts} attempts",
                        url=event.url, last_error=event.last_error)
    return OperationRecord(
        environment_id=event.environment_id, id=event.webhook_id, kind="webhook",
        operation="delivery", status=status, started_at=at, ended_at=at, error=error,
        integration_id=event.integration_id, connection_id=event.connection_id,
        messages=[line],
    )


def storable(record: OperationRecord) -> OperationRecord:
    """`record` without NUL characters: PostgreSQL text and jsonb refuse them, and a refused
    insert would requeue the event until it is dead-lettered and the operation lost."""
    return replace(
        record, **{f.name: without_nul(getattr(record, f.name)) for f in fields(record)}
    )


def duration_ms(started_at: datetime, ended_at: datetime | None) -> int | None:
    """Whole milliseconds (rounded down) from start to end; None while running."""
    if ended_at is None:
        return None
    return max(0, (ended_at - started_at) // timedelta(milliseconds=1))


def summary(row: Mapping[str, Any]) -> dict[str, Any]:
    """An operation as the list endpoint shows it."""
    shown = {
        **row,
        "type": row["kind"],
        "duration_ms": duration_ms(row["started_at"], row["ended_at"]),
    }
    return {name: shown[name] for name in SUMMARY_FIELDS}


def detail(row: Mapping[str, Any]) -> dict[str, Any]:
    """An operation with its messages, in time order."""
    messages = [
        {"at": m.get("at"), "level": m.get("level"), "message": m.get("message"),
         "meta": m.get("meta") or {}}
        for m in row["messages"]
    ]
    return {**summary(row), "messages": messages}


def _subject(event: OperationStarted | OperationFinished) -> dict[str, Any]:
    return {
        "integration_id": event.integration_id,
        "connection_id": event.connection_id,
        "provider": event.provider,
        "auth_mode": event.auth_mode,
        "end_user": event.end_user.model_dump(mode="json") if event.end_user else None,
    }


def _message(
    at: datetime, level: Literal["info", "error"], text: str, **meta: Any
) -> dict[str, Any]:
    return LogMessage(at=at, level=level, message=text, meta=meta).model_dump(mode="json")
