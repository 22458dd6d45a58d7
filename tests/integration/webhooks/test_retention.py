"""Housekeeping: finished webhooks and dedupe records past their retention go."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from terapi_webhooks.keys import STORE
from tests.integration.webhooks.conftest import new_environment_id

pytestmark = pytest.mark.integration


async def _delivery(pool, env: int, status: str, age: timedelta) -> str:
    webhook_id = f"msg_{uuid.uuid4().hex}"
    await pool.execute(
        "INSERT INTO webhooks.deliveries (webhook_id, environment_id, source_event_id, url,"
        " payload, status, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, '{}', $5,"
        " now(), now() - $6::interval)",
        webhook_id, env, uuid.uuid4(), "https://app.example/hook", status, age)
    return webhook_id


async def test_old_finished_webhooks_go_pending_and_recent_ones_stay(start_webhooks, pool):
    client = await start_webhooks()
    store = client.app[STORE]
    env = new_environment_id()
    old = timedelta(days=40)
    gone = [await _delivery(pool, env, status, old) for status in ("delivered", "abandoned")]
    kept = [await _delivery(pool, env, "pending", old),
            await _delivery(pool, env, "delivered", timedelta(days=2))]

    await store.prune_finished(before=datetime.now(UTC) - timedelta(days=30), batch=1)

    assert [await store.get(env, w) for w in gone] == [None, None]
    assert [(await store.get(env, w))["status"] for w in kept] == ["pending", "delivered"]


async def test_dedupe_records_outlive_redeliveries_then_go(start_webhooks, pool):
    client = await start_webhooks()
    env = new_environment_id()
    old, recent = uuid.uuid4(), uuid.uuid4()
    for event_id, age in ((old, timedelta(days=10)), (recent, timedelta(hours=1))):
        await pool.execute(
            "INSERT INTO webhooks.processed_events (consumer, event_id, environment_id,"
            " processed_at) VALUES ('test', $1, $2, now() - $3::interval)", event_id, env, age)

    now = datetime.now(UTC)
    await client.app[STORE].prune(finished_before=now - timedelta(days=30),
                                  handled_before=now - timedelta(days=7))

    left = await pool.fetch(
        "SELECT event_id FROM webhooks.processed_events WHERE environment_id = $1", env)
    assert [r["event_id"] for r in left] == [recent]
