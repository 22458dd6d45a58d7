"""How operation events become log records, and how clients see them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from terapi_common.events import OperationFinished, WebhookDelivered
from terapi_logs import domain

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_duration_is_whole_milliseconds_rounded_down() -> None:
    assert domain.duration_ms(T0, T0 + timedelta(seconds=1, microseconds=2999)) == 1002


def test_running_operation_has_no_duration() -> None:
    assert domain.duration_ms(T0, None) is None


def test_finish_without_start_uses_its_end_as_start() -> None:
    event = OperationFinished(environment_id=1, operation_id="op", operation="creation",
                              status="success", ended_at=T0)
    record = domain.from_finished(event)
    assert (record.started_at, record.ended_at, record.status) == (T0, T0, "success")


def test_delivered_webhook_is_a_successful_delivery_operation() -> None:
    event = WebhookDelivered(environment_id=1, occurred_at=T0, webhook_id="msg_a",
                             url="https://app.example/h", attempt=2, status_code=204,
                             source_event_id=uuid4())
    record = domain.from_webhook(event)
    assert (record.id, record.kind, record.operation, record.status) == (
        "msg_a", "webhook", "delivery", "success"
    )
    assert record.messages[0]["message"] == "delivered on attempt 2"


def test_summary_names_kind_as_type_and_leaves_messages_out() -> None:
    row = {"id": "op", "kind": "auth", "operation": "creation", "status": "success",
           "integration_id": "github", "connection_id": None, "provider": "github",
           "auth_mode": "OAUTH2", "end_user": None, "started_at": T0,
           "ended_at": T0 + timedelta(seconds=2), "error": None, "messages": []}
    shown = domain.summary(row)
    assert shown["type"] == "auth" and shown["duration_ms"] == 2000
    assert "kind" not in shown and "messages" not in shown


def test_webhook_operation_can_be_found_by_its_connection() -> None:
    event = WebhookDelivered(
        environment_id=1, webhook_id="msg_1", url="https://app.example.com/hook", attempt=1,
        status_code=200, source_event_id=uuid4(), integration_id="github", connection_id="alice",
    )
    record = domain.from_webhook(event)
    assert (record.integration_id, record.connection_id) == ("github", "alice")
