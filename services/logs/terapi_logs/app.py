"""The logs service: indexes every authorization attempt and serves search over them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from pathlib import Path

from aiohttp import web

from terapi_common import maintenance
from terapi_common.auth import KeyAuthenticator
from terapi_common.events import (
    OperationFinished,
    OperationStarted,
    WebhookAbandoned,
    WebhookDelivered,
)
from terapi_common.runtime import RUNTIME
from terapi_common.topology import queue_name
from terapi_logs import handlers
from terapi_logs.api import routes
from terapi_logs.keys import AUTHENTICATOR, STORE
from terapi_logs.store import PgStore

NAME = "logs"
SCHEMA = "logs"
MIGRATIONS = Path(__file__).parent / "migrations"


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
    app.cleanup_ctx.append(_logs_ctx)


async def _logs_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    store = PgStore(runtime.pool)
    bus = runtime.bus
    subscriptions = [
        await bus.subscribe(
            queue_name(NAME, "on_operation_started"), [OperationStarted],
            partial(handlers.on_operation_started, store=store),
        ),
        await bus.subscribe(
            queue_name(NAME, "on_operation_finished"), [OperationFinished],
            partial(handlers.on_operation_finished, store=store),
        ),
        await bus.subscribe(
            queue_name(NAME, "on_webhook_outcome"), [WebhookDelivered, WebhookAbandoned],
            partial(handlers.on_webhook_outcome, store=store),
        ),
    ]
    app[STORE] = store
    app[AUTHENTICATOR] = KeyAuthenticator(bus)
    retention = timedelta(days=runtime.settings.log_retention_days)
    prune = maintenance.start(
        lambda: store.prune_operations(before=runtime.clock.now() - retention),
        every=maintenance.PRUNE_INTERVAL_SECONDS, name="logs operations")
    yield
    await maintenance.stop(prune)
    for subscription in subscriptions:
        await subscription.stop()
