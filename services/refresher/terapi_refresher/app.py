"""The refresher: tracks when credentials expire, refreshes them ahead of time, revokes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from pathlib import Path

from aiohttp import web

from terapi_common import db, maintenance
from terapi_common.db import OutboxRelay
from terapi_common.events import (
    ConnectionCreated,
    ConnectionDeleted,
    ConnectionUpdated,
    RevokeCredentials,
)
from terapi_common.providers import load_catalog
from terapi_common.runtime import RUNTIME, Runtime
from terapi_common.topology import queue_name
from terapi_refresher import handlers, revoke
from terapi_refresher.refresh import Tools
from terapi_refresher.schedule import Scheduler
from terapi_refresher.store import PgStore

NAME = "refresher"
SCHEMA = "refresher"
MIGRATIONS = Path(__file__).parent / "migrations"


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_refresher_ctx)


async def _refresher_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    store = PgStore(runtime.pool)
    tools = Tools(bus=runtime.bus, key_ring=runtime.require_key_ring(),
                  catalog=load_catalog(runtime.settings.providers_path),
                  http=runtime.require_http(), clock=runtime.clock)
    stored_queue = queue_name(NAME, "on_connection_stored")
    deleted_queue = queue_name(NAME, "on_connection_deleted")
    subscriptions = [
        await runtime.bus.subscribe(
            stored_queue, [ConnectionCreated, ConnectionUpdated],
            partial(handlers.on_connection_stored, store=store, clock=runtime.clock,
                    consumer=stored_queue),
        ),
        await runtime.bus.subscribe(
            deleted_queue, [ConnectionDeleted],
            partial(handlers.on_connection_deleted, store=store, consumer=deleted_queue),
        ),
        await runtime.bus.serve(RevokeCredentials,
                                partial(revoke.on_revoke_credentials, tools=tools)),
    ]
    relay = OutboxRelay(runtime.pool, SCHEMA, runtime.bus)
    relay.start()
    # Each refresh in a batch holds one pooled connection for its lock and needs another for
    # its writes: a batch of at most half the pool always leaves room to finish.
    batch = max(1, min(8, runtime.pool.get_max_size() // 2))
    scheduler = Scheduler(store, tools, kick=relay.kick, batch=batch)
    scheduler.start()
    prune = _start_pruning(runtime, store)
    yield
    await maintenance.stop(prune)
    for subscription in subscriptions:
        await subscription.stop()
    await scheduler.stop()
    await relay.stop()  # after the scheduler: its last outcomes go out too


def _start_pruning(runtime: Runtime, store: PgStore) -> asyncio.Task[None]:
    """Forget handled events and tombstones once no redelivery can still need them."""
    dedupe = timedelta(days=runtime.settings.dedupe_retention_days)

    async def prune_old_records() -> int:
        before = runtime.clock.now() - dedupe
        return (await db.prune_processed_events(runtime.pool, SCHEMA, before=before)
                + await store.prune_tombstones(before=before))

    return maintenance.start(prune_old_records, every=maintenance.PRUNE_INTERVAL_SECONDS,
                             name="refresher processed events and tombstones")
