"""Housekeeping: operations past the retention period leave the Logs view."""

from __future__ import annotations

from datetime import timedelta

import pytest

from terapi_logs import handlers
from terapi_logs.keys import STORE
from tests.conftest import unique
from tests.integration.logs.conftest import new_environment_id
from tests.integration.logs.test_indexing import T0, finished, started

pytestmark = pytest.mark.integration


async def test_operations_older_than_the_retention_go_and_recent_ones_stay(client) -> None:
    store = client.app[STORE]
    env = new_environment_id()
    old = [unique("old") for _ in range(5)]
    recent = unique("recent")
    for op in old:
        await handlers.on_operation_finished(finished(env, op), store=store)
    later = started(env, recent).model_copy(update={"started_at": T0 + timedelta(days=40)})
    await handlers.on_operation_started(later, store=store)

    removed = await store.prune_operations(before=T0 + timedelta(days=10), batch=2)

    assert removed >= len(old)  # pages of two until none is left
    assert [await store.get(env, op) for op in old] == [None] * len(old)
    assert (await store.get(env, recent))["status"] == "running"
