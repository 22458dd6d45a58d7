"""Operation events merge into one log entry whatever their order, however often they come."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from terapi_common.events import (
    EndUser,
    ErrorInfo,
    LogMessage,
    OperationFinished,
    OperationStarted,
    WebhookAbandoned,
)
from terapi_logs import handlers
from terapi_logs.keys import STORE
from tests.conftest import unique
from tests.integration.logs.conftest import new_environment_id, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def started(env: int, op: str, *messages: LogMessage) -> OperationStarted:
    return OperationStarted(
        environment_id=env, operation_id=op, operation="creation", integration_id="github",
        provider="github", auth_mode="OAUTH2", started_at=at(0), messages=list(messages),
    )


def finished(env: int, op: str, *messages: LogMessage, **extra) -> OperationFinished:
    fields = {"environment_id": env, "operation_id": op, "operation": "creation",
              "status": "failed", "integration_id": "github", "ended_at": at(2),
              "error": ErrorInfo(code="access_denied", message="refused"),
              "messages": list(messages), **extra}
    return OperationFinished(**fields)


def line(seconds: float, text: str) -> LogMessage:
    return LogMessage(at=at(seconds), message=text)


async def stored(client, env: int, op: str) -> dict:
    return await client.app[STORE].get(env, op)


@pytest.mark.parametrize("order", ["started-first", "finished-first"])
async def test_finished_operation_stays_finished_in_either_order(client, order) -> None:
    env, op = new_environment_id(), unique("op")
    store = client.app[STORE]
    steps = [
        lambda: handlers.on_operation_started(started(env, op), store=store),
        lambda: handlers.on_operation_finished(finished(env, op), store=store),
    ]
    for step in steps if order == "started-first" else reversed(steps):
        await step()
    row = await stored(client, env, op)
    assert row["status"] == "failed"
    assert (row["started_at"], row["ended_at"]) == (at(0), at(2))
    assert row["error"] == {"code": "access_denied", "message": "refused"}


async def test_messages_are_merged_in_time_order_without_duplicates(client) -> None:
    env, op = new_environment_id(), unique("op")
    store = client.app[STORE]
    await handlers.on_operation_finished(
        finished(env, op, line(1, "token exchanged"), line(2, "failed")), store=store
    )
    await handlers.on_operation_started(
        started(env, op, line(0, "redirected"), line(1, "token exchanged")), store=store
    )
    row = await stored(client, env, op)
    assert [m["message"] for m in row["messages"]] == ["redirected", "token exchanged", "failed"]


async def test_same_events_twice_change_nothing(client) -> None:
    env, op = new_environment_id(), unique("op")
    store = client.app[STORE]
    first, last = started(env, op, line(0, "a")), finished(env, op, line(1, "b"))
    await handlers.on_operation_started(first, store=store)
    await handlers.on_operation_finished(last, store=store)
    once = await stored(client, env, op)
    await handlers.on_operation_finished(last, store=store)
    await handlers.on_operation_started(first, store=store)
    twice = await stored(client, env, op)
    assert {k: v for k, v in twice.items() if k != "updated_at"} == {
        k: v for k, v in once.items() if k != "updated_at"
    }


async def test_facts_known_only_at_the_end_are_kept_when_the_start_comes_late(client) -> None:
    env, op = new_environment_id(), unique("op")
    store = client.app[STORE]
    end_user = EndUser(id="u-1", email="ada@example.com")
    await handlers.on_operation_finished(
        finished(env, op, connection_id="conn-9", end_user=end_user), store=store
    )
    await handlers.on_operation_started(started(env, op), store=store)
    row = await stored(client, env, op)
    assert row["connection_id"] == "conn-9"
    assert row["end_user"] == {"id": "u-1", "email": "ada@example.com", "display_name": None}


async def test_finish_without_start_time_is_listed_by_its_end_until_the_start_arrives(
    client,
) -> None:
    env, op = new_environment_id(), unique("op")
    store = client.app[STORE]
    await handlers.on_operation_finished(finished(env, op), store=store)
    assert (await stored(client, env, op))["started_at"] == at(2)
    await handlers.on_operation_started(started(env, op), store=store)
    assert (await stored(client, env, op))["started_at"] == at(0)


async def test_secrets_in_messages_are_masked(client) -> None:
    env, op = new_environment_id(), unique("op")
    message = LogMessage(at=at(0), message="GET /cb?code=abc123",
                         meta={"access_token": "ya29.secret", "status": 200})
    await handlers.on_operation_started(started(env, op, message), store=client.app[STORE])
    saved = (await stored(client, env, op))["messages"][0]
    assert "abc123" not in saved["message"]
    assert saved["meta"] == {"access_token": "[redacted]", "status": 200}


async def test_published_events_reach_the_log(client, bus) -> None:
    env, op = new_environment_id(), unique("op")
    await bus.publish(started(env, op))
    await bus.publish(finished(env, op, status="success", error=None))

    async def finished_row() -> bool:
        row = await stored(client, env, op)
        return row is not None and row["status"] == "success"

    await wait_for(finished_row)


async def test_abandoned_webhook_is_logged_as_a_failed_webhook_operation(client, bus) -> None:
    env = new_environment_id()
    event = WebhookAbandoned(
        environment_id=env, webhook_id="msg_" + uuid4().hex[:26], url="https://app.example/h",
        attempts=12, last_error="endpoint answered HTTP 500", source_event_id=uuid4(),
    )
    await bus.publish(event)
    await wait_for(lambda: stored(client, env, event.webhook_id))
    row = await stored(client, env, event.webhook_id)
    assert (row["kind"], row["operation"], row["status"]) == ("webhook", "delivery", "failed")
    assert row["error"] == {"code": "webhook_abandoned", "message": "endpoint answered HTTP 500"}


async def test_control_characters_in_error_and_messages_are_shown_replaced(client) -> None:
    env, op = new_environment_id(), unique("op")
    store = client.app[STORE]
    error = ErrorInfo(code="access_denied", message="denied\x00by\x1bprovider")
    await handlers.on_operation_finished(
        finished(env, op, line(1, "callback said\x00no"), error=error), store=store
    )
    row = await stored(client, env, op)
    assert row["error"] == {"code": "access_denied", "message": "denied\ufffdby\ufffdprovider"}
    assert [m["message"] for m in row["messages"]] == ["callback said\ufffdno"]


async def test_nul_in_other_event_text_is_dropped_rather_than_losing_the_operation(
    client,
) -> None:
    env, op = new_environment_id(), unique("op")
    store = client.app[STORE]
    message = LogMessage(at=at(1), message="redirected", meta={"state": "ab\x00c"})
    event = started(env, op, message).model_copy(
        update={"end_user": EndUser(id="user-1", display_name="A\x00da")}
    )
    await handlers.on_operation_started(event, store=store)
    row = await stored(client, env, op)
    assert row["end_user"]["display_name"] == "Ada"
    assert row["messages"][0]["meta"] == {"state": "abc"}
