"""The webhooks service: signs and delivers notifications to the app's backend, with retries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import aiohttp
from aiohttp import web

from terapi_common import maintenance
from terapi_common.db import OutboxRelay
from terapi_common.events import (
    AuthFailed,
    ConnectionCreated,
    ConnectionUpdated,
    EnvironmentChanged,
    RefreshFailed,
)
from terapi_common.runtime import RUNTIME, Runtime
from terapi_common.settings import WebhookSettings
from terapi_common.topology import queue_name
from terapi_webhooks import handlers
from terapi_webhooks.delivery import Dispatcher, DispatchSettings
from terapi_webhooks.domain import RetryPolicy
from terapi_webhooks.keys import DISPATCHER, STORE
from terapi_webhooks.store import PgStore
from terapi_webhooks.targets import public_only_session

NAME = "webhooks"
SCHEMA = "webhooks"
MIGRATIONS = Path(__file__).parent / "migrations"

# How long an environment's webhook targets are kept when no change announcement arrives
# (the vault announces every change; this bounds a missed announcement).
TARGETS_CACHE_SECONDS = 10.0

SUBSCRIPTIONS = {
    "on_connection_created": ConnectionCreated,
    "on_connection_updated": ConnectionUpdated,
    "on_auth_failed": AuthFailed,
    "on_refresh_failed": RefreshFailed,
}


def setup(app: web.Application) -> None:
    """No routes: the service only consumes events and delivers webhooks."""
    app.cleanup_ctx.append(_webhooks_ctx)


def dispatch_settings(settings: WebhookSettings, runtime: Runtime) -> DispatchSettings:
    return DispatchSettings(
        policy=RetryPolicy(
            max_attempts=settings.max_attempts,
            first_retry_seconds=settings.first_retry_seconds,
            max_retry_seconds=settings.max_retry_seconds,
        ),
        timeout_seconds=settings.timeout_seconds,
        sign_timeout_seconds=runtime.settings.rpc_timeout_seconds,
        allow_private_targets=settings.allow_private_targets,
    )


def _http_session(runtime: Runtime, settings: WebhookSettings) -> aiohttp.ClientSession | None:
    """A session of our own when none is shared or when only public targets are allowed."""
    if not settings.allow_private_targets:
        return public_only_session()
    return None if runtime.http is not None else aiohttp.ClientSession()


async def _webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    settings = WebhookSettings()
    store = PgStore(runtime.pool)
    relay = OutboxRelay(runtime.pool, SCHEMA, runtime.bus)
    own_http = _http_session(runtime, settings)
    dispatcher = Dispatcher(
        store=store, bus=runtime.bus, http=own_http or runtime.require_http(),
        clock=runtime.clock, settings=dispatch_settings(settings, runtime),
        on_recorded=relay.kick,
    )
    targets = handlers.EnvironmentTargets(runtime.bus, ttl=TARGETS_CACHE_SECONDS)
    handle = partial(
        handlers.on_notifying_event, store=store, targets=targets, clock=runtime.clock,
        wake=dispatcher.kick,
    )
    # Subscribed first, so no change made while the handlers start can be missed.
    subscriptions = [await runtime.bus.subscribe_broadcast(
        queue_name(NAME, "targets_cache"), [EnvironmentChanged],
        partial(handlers.on_environment_changed, targets=targets),
    )]
    subscriptions += [
        await runtime.bus.subscribe(queue_name(NAME, name), [event_type], handle)
        for name, event_type in SUBSCRIPTIONS.items()
    ]
    relay.start()
    dispatcher.start()
    app[STORE] = store
    app[DISPATCHER] = dispatcher
    kept = timedelta(days=settings.retention_days)
    dedupe = timedelta(days=runtime.settings.dedupe_retention_days)
    prune = maintenance.start(
        lambda: store.prune(finished_before=runtime.clock.now() - kept,
                            handled_before=runtime.clock.now() - dedupe),
        every=maintenance.PRUNE_INTERVAL_SECONDS, name="webhooks finished and handled")
    yield
    await maintenance.stop(prune)
    for subscription in subscriptions:
        await subscription.stop()
    await dispatcher.stop()
    await relay.stop()
    if own_http is not None:
        await own_http.close()
