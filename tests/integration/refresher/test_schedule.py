"""The refresher follows connection events into its schedule, once per event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from terapi_common import db
from terapi_common.clock import FakeClock
from terapi_common.events import ConnectionCreated, ConnectionDeleted
from terapi_refresher import handlers
from terapi_refresher.app import MIGRATIONS, SCHEMA
from terapi_refresher.store import PgStore
from tests.conftest import unique

pytestmark = pytest.mark.integration
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def store(pool) -> PgStore:
    async with pool.acquire() as conn:
        await db.migrate(conn, SCHEMA, Path(MIGRATIONS))
    return PgStore(pool)


def _created(connection_id: str, expires_at: datetime | None, env: int) -> ConnectionCreated:
    return ConnectionCreated(environment_id=env, connection_id=connection_id, integration_id="gh",
                             provider="github", auth_mode="OAUTH2", environment="dev",
                             expires_at=expires_at)


def _env() -> int:
    return int(unique("e").split("-")[1], 16) % 1_000_000 + 1000


async def test_expiring_connection_is_scheduled_before_expiry(store: PgStore) -> None:
    env = _env()
    event = _created("alice", NOW + timedelta(hours=1), env)
    await handlers.on_connection_stored(event, store=store, clock=FakeClock(NOW), consumer="c")
    assert await store.due(env, until=NOW + timedelta(minutes=56)) == ["alice"]
    assert await store.due(env, until=NOW + timedelta(minutes=54)) == []


async def test_connection_without_expiry_is_not_scheduled(store: PgStore) -> None:
    env = _env()
    await handlers.on_connection_stored(_created("bob", None, env), store=store,
                                        clock=FakeClock(NOW), consumer="c")
    assert await store.due(env, until=NOW + timedelta(days=365)) == []


async def test_deleted_connection_leaves_the_schedule(store: PgStore) -> None:
    env = _env()
    await handlers.on_connection_stored(_created("carol", NOW + timedelta(hours=1), env),
                                        store=store, clock=FakeClock(NOW), consumer="c")
    deleted = ConnectionDeleted(environment_id=env, connection_id="carol", integration_id="gh",
                                provider="github", auth_mode="OAUTH2", environment="dev")
    await handlers.on_connection_deleted(deleted, store=store, consumer="d")
    assert await store.due(env, until=NOW + timedelta(days=1)) == []


async def test_redelivered_old_event_does_not_undo_a_later_change(store: PgStore) -> None:
    """At-least-once delivery: the same event handled twice changes nothing the second time."""
    env = _env()
    first = _created("dave", NOW + timedelta(hours=1), env)
    await handlers.on_connection_stored(first, store=store, clock=FakeClock(NOW), consumer="c")
    deleted = ConnectionDeleted(environment_id=env, connection_id="dave", integration_id="gh",
                                provider="github", auth_mode="OAUTH2", environment="dev")
    await handlers.on_connection_deleted(deleted, store=store, consumer="d")
    await handlers.on_connection_stored(first, store=store, clock=FakeClock(NOW), consumer="c")
    assert await store.due(env, until=NOW + timedelta(days=1)) == []


def _deleted(connection_id: str, env: int, *, at: datetime) -> ConnectionDeleted:
    return ConnectionDeleted(environment_id=env, connection_id=connection_id, integration_id="gh",
                             provider="github", auth_mode="OAUTH2", environment="dev",
                             occurred_at=at)


async def test_late_delete_does_not_unschedule_a_connection_created_again(store: PgStore) -> None:
    """Deleted, then created again; the deletion arrives last but happened first."""
    env = _env()
    recreated = _created("erin", NOW + timedelta(hours=1), env).model_copy(
        update={"occurred_at": NOW})
    await handlers.on_connection_stored(recreated, store=store, clock=FakeClock(NOW),
                                        consumer="c")
    late = _deleted("erin", env, at=NOW - timedelta(seconds=1))
    await handlers.on_connection_deleted(late, store=store, consumer="d")
    assert await store.due(env, until=NOW + timedelta(hours=1)) == ["erin"]


async def test_late_create_does_not_bring_back_a_deleted_connection(store: PgStore) -> None:
    env = _env()
    await handlers.on_connection_deleted(_deleted("fay", env, at=NOW), store=store,
                                         consumer="d")
    late = _created("fay", NOW + timedelta(hours=1), env).model_copy(
        update={"occurred_at": NOW - timedelta(seconds=1)})
    await handlers.on_connection_stored(late, store=store, clock=FakeClock(NOW), consumer="c")
    assert await store.due(env, until=NOW + timedelta(days=1)) == []


async def test_late_update_does_not_undo_a_newer_expiry(store: PgStore) -> None:
    env = _env()
    newer = _created("gus", NOW + timedelta(hours=2), env).model_copy(
        update={"occurred_at": NOW})
    older = _created("gus", NOW + timedelta(hours=1), env).model_copy(
        update={"occurred_at": NOW - timedelta(seconds=1)})
    for event in (newer, older):
        await handlers.on_connection_stored(event, store=store, clock=FakeClock(NOW),
                                            consumer="c")
    assert await store.due(env, until=NOW + timedelta(minutes=90)) == []
    assert await store.due(env, until=NOW + timedelta(minutes=116)) == ["gus"]


async def test_tombstones_are_pruned_once_old(store: PgStore, pool) -> None:
    env = _env()
    await handlers.on_connection_deleted(_deleted("hal", env, at=NOW), store=store,
                                         consumer="d")
    await store.prune_tombstones(before=datetime.now(UTC) + timedelta(seconds=1))
    count = await pool.fetchval(
        "SELECT count(*) FROM refresher.schedules WHERE environment_id = $1", env)
    assert count == 0
