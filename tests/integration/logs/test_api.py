"""`GET /logs/operations` and `/logs/operations/{id}`: filters, pages, errors, isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from terapi_common.events import ErrorInfo, LogMessage, OperationFinished, OperationStarted
from terapi_logs import handlers
from terapi_logs.keys import STORE
from tests.conftest import unique
from tests.integration.logs.conftest import new_environment_id

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def add_started(client, env: int, *, op: str | None = None, seconds: float = 0,
                      **fields) -> str:
    op = op or unique("op")
    event = OperationStarted(
        environment_id=env, operation_id=op, operation="creation",
        started_at=T0 + timedelta(seconds=seconds),
        **{"integration_id": "github", "provider": "github", "auth_mode": "OAUTH2", **fields},
    )
    await handlers.on_operation_started(event, store=client.app[STORE])
    return op


async def add_finished(client, env: int, op: str, *, status: str = "success",
                       seconds: float = 1.5, **fields) -> None:
    event = OperationFinished(
        environment_id=env, operation_id=op, operation="creation", status=status,
        ended_at=T0 + timedelta(seconds=seconds), **fields,
    )
    await handlers.on_operation_finished(event, store=client.app[STORE])


async def get(client, path: str, key: str | None, **params):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = await client.get(path, headers=headers, params=params)
    return response.status, await response.json()


async def test_list_shows_each_operation_with_its_summary(client, vault) -> None:
    env = new_environment_id()
    key = vault.issue_key(env)
    op = await add_started(client, env, connection_id="conn-1")
    await add_finished(client, env, op, status="failed",
                       error=ErrorInfo(code="access_denied", message="refused"))
    status, body = await get(client, "/logs/operations", key)
    assert status == 200 and body["next_cursor"] is None
    assert body["data"] == [{
        "id": op, "type": "auth", "operation": "creation", "status": "failed",
        "integration_id": "github", "connection_id": "conn-1", "provider": "github",
        "auth_mode": "OAUTH2", "end_user": None, "started_at": "2026-03-01T12:00:00+00:00",
        "ended_at": "2026-03-01T12:00:01.500000+00:00", "duration_ms": 1500,
        "error": {"code": "access_denied", "message": "refused"},
    }]


async def test_running_operation_has_no_duration(client, vault) -> None:
    env = new_environment_id()
    key = vault.issue_key(env)
    await add_started(client, env)
    _, body = await get(client, "/logs/operations", key)
    assert body["data"][0]["status"] == "running" and body["data"][0]["duration_ms"] is None


async def test_detail_lists_messages_in_order(client, vault) -> None:
    env = new_environment_id()
    key = vault.issue_key(env)
    first = LogMessage(at=T0, message="redirected to provider", meta={"scopes": ["repo"]})
    op = await add_started(client, env, messages=[first])
    last = LogMessage(at=T0 + timedelta(seconds=1), level="error", message="denied")
    await add_finished(client, env, op, status="failed", messages=[last])
    status, body = await get(client, f"/logs/operations/{op}", key)
    assert status == 200 and body["id"] == op and body["status"] == "failed"
    assert body["messages"] == [
        {"at": "2026-03-01T12:00:00Z", "level": "info", "message": "redirected to provider",
         "meta": {"scopes": ["repo"]}},
        {"at": "2026-03-01T12:00:01Z", "level": "error", "message": "denied", "meta": {}},
    ]


async def test_unknown_operation_is_operation_not_found(client, vault) -> None:
    key = vault.issue_key(new_environment_id())
    status, body = await get(client, "/logs/operations/op-missing", key)
    assert status == 404 and body["error"]["code"] == "operation_not_found"


async def test_request_without_secret_key_is_unauthorized(client, vault) -> None:
    status, body = await get(client, "/logs/operations", None)
    assert status == 401 and body["error"]["code"] == "missing_secret_key"


async def test_other_environments_operations_are_invisible(client, vault) -> None:
    mine, theirs = new_environment_id(), new_environment_id()
    op = await add_started(client, theirs)
    key = vault.issue_key(mine)
    _, listed = await get(client, "/logs/operations", key)
    status, _ = await get(client, f"/logs/operations/{op}", key)
    assert listed["data"] == [] and status == 404


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"integration_id": "slack"}, ["slack-op"]),
        ({"connection_id": "conn-x"}, ["conn-op"]),
        ({"status": "failed"}, ["failed-op"]),
        ({"status": "running"}, ["slack-op", "conn-op", "refresh-op"]),
        ({"type": "refresh"}, ["refresh-op"]),
        ({"since": "2026-03-01T12:00:10Z"}, ["slack-op", "conn-op"]),
        ({"until": "2026-03-01T12:00:10"}, ["refresh-op", "failed-op"]),
    ],
    ids=["integration", "connection", "failed", "running", "type", "since", "until-naive-utc"],
)
async def test_filters_narrow_the_list(client, vault, params, expected) -> None:
    env = new_environment_id()
    key = vault.issue_key(env)
    failed = await add_started(client, env, op="failed-op", seconds=0)
    await add_finished(client, env, failed, status="failed", seconds=1)
    refresh = OperationStarted(environment_id=env, operation_id="refresh-op", kind="refresh",
                               operation="refresh", started_at=T0 + timedelta(seconds=5))
    await handlers.on_operation_started(refresh, store=client.app[STORE])
    await add_started(client, env, op="conn-op", seconds=10, connection_id="conn-x")
    await add_started(client, env, op="slack-op", seconds=20, integration_id="slack")
    status, body = await get(client, "/logs/operations", key, **params)
    assert status == 200
    assert [item["id"] for item in body["data"]] == expected


async def test_pages_cover_every_operation_once_newest_first(client, vault) -> None:
    env = new_environment_id()
    key = vault.issue_key(env)
    # Pairs share a start time so the id has to break ties across page edges.
    ops = [await add_started(client, env, op=f"op-{i:02d}", seconds=i // 2) for i in range(7)]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        status, body = await get(client, "/logs/operations", key, **params)
        assert status == 200
        seen += [item["id"] for item in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ops, reverse=True)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "done"}, "status"),
        ({"type": "email"}, "type"),
        ({"since": "yesterday"}, "since"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_bad_parameter_is_a_400_naming_it(client, vault, params, parameter) -> None:
    key = vault.issue_key(new_environment_id())
    status, body = await get(client, "/logs/operations", key, **params)
    assert status == 400 and body["error"]["code"] == "invalid_request"
    assert body["error"]["parameter"] == parameter and parameter in body["error"]["message"]


@pytest.mark.parametrize("cursor", ["not base64!", "e30", "WyJub3QtYS1kYXRlIiwgIngiXQ"])
async def test_bad_cursor_is_invalid_cursor(client, vault, cursor) -> None:
    key = vault.issue_key(new_environment_id())
    status, body = await get(client, "/logs/operations", key, cursor=cursor)
    assert status == 400 and body["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"connection_id": "a\x00b"}, "connection_id"),
        ({"integration_id": "\x00"}, "integration_id"),
        ({"since": "0001-01-01T00:00:00+05:00"}, "since"),
        ({"until": "9999-12-31T23:59:59-05:00"}, "until"),
    ],
    ids=["nul-connection", "nul-integration", "since-before-year-1-utc", "until-after-9999-utc"],
)
async def test_value_the_database_cannot_hold_is_a_400_naming_it(
    client, vault, params, parameter
) -> None:
    key = vault.issue_key(new_environment_id())
    status, body = await get(client, "/logs/operations", key, **params)
    assert status == 400 and body["error"]["code"] == "invalid_request"
    assert body["error"]["parameter"] == parameter


@pytest.mark.parametrize(
    "cursor",
    [
        "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzA1OjAwIiwieCJd",  # ["0001-01-01T00:00:00+05:00", "x"]
        "WyI5OTk5LTEyLTMxVDIzOjU5OjU5LTA1OjAwIiwieCJd",  # ["9999-12-31T23:59:59-05:00", "x"]
        "WyIyMDI2LTAzLTAxVDEyOjAwOjAwKzAwOjAwIiwiYVx1MDAwMGIiXQ",  # an id with a NUL
    ],
    ids=["year-1", "year-9999", "nul-id"],
)
async def test_forged_cursor_out_of_range_is_invalid_cursor(client, vault, cursor) -> None:
    key = vault.issue_key(new_environment_id())
    status, body = await get(client, "/logs/operations", key, cursor=cursor)
    assert status == 400 and body["error"]["code"] == "invalid_cursor"


async def test_operation_id_with_a_nul_is_a_400_naming_it(client, vault) -> None:
    key = vault.issue_key(new_environment_id())
    status, body = await get(client, "/logs/operations/a%00b", key)
    assert status == 400 and body["error"]["code"] == "invalid_request"
    assert body["error"]["parameter"] == "operation_id"
