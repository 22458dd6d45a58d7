"""The vault service: encrypted storage of environments, integrations and connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

from aiohttp import web

from terapi_common.db import OutboxRelay
from terapi_common.events import (
    ConnectionCreated,
    ConnectionDeleted,
    ConnectionEvent,
    ConnectionUpdated,
    IntegrationChanged,
    RefreshFailed,
)
from terapi_common.providers import load_catalog
from terapi_common.runtime import RUNTIME
from terapi_common.topology import queue_name
from terapi_vault import api
from terapi_vault.auth import EnvironmentKeys
from terapi_vault.cache import ConnectionCache
from terapi_vault.commands import command_handlers
from terapi_vault.handlers import (
    REVOKE_TIMEOUT_SECONDS,
    Vault,
    create_default_environments,
    forget_integration,
)
from terapi_vault.keys import VAULT
from terapi_vault.lane import StatementLane, lane_sizes
from terapi_vault.store import PgStore

NAME = "vault"
SCHEMA = "vault"
MIGRATIONS = Path(__file__).parent / "migrations"


async def forget_cached_connection(event: ConnectionEvent, *, store: PgStore) -> None:
    """Another process changed a connection: stop serving its cached rows."""
    store.forget_connection(event.environment_id, event.connection_id)


async def on_refresh_failed(event: RefreshFailed, *, store: PgStore) -> None:
    """The refresher gave up on a connection's credentials: show it on the connection until
    new credentials replace them. Idempotent, so a redelivery changes nothing."""
    if event.failed_version is None:
        return  # an older refresher: without the version the mark could hit newer credentials
    await store.record_refresh_error(
        event.environment_id, event.integration_id, event.connection_id,
        version=event.failed_version,
        error={"code": event.error.code, "message": event.error.message,
               "attempts": event.attempts, "occurred_at": event.occurred_at.isoformat()},
    )


async def forget_cached_integration(event: IntegrationChanged, *, vault: Vault) -> None:
    """Another replica changed an integration: look it up afresh next time."""
    forget_integration(vault, event.environment_id, event.integration_id)


def setup(app: web.Application) -> None:
    """Add the vault's routes and its resources' lifetime to `app`."""
    app.router.add_routes(api.routes)
    app.cleanup_ctx.append(_vault_context)


async def _vault_context(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    key_ring = runtime.require_key_ring()
    read_size, write_size = lane_sizes(runtime.pool.get_max_size())
    reads = StatementLane(runtime.pool, size=read_size) if read_size else None
    writes = StatementLane(runtime.pool, size=write_size) if write_size else None
    store = PgStore(runtime.pool, reader=reads, writer=writes, cache=ConnectionCache())
    await create_default_environments(store, key_ring)
    relay = OutboxRelay(runtime.pool, SCHEMA, runtime.bus)
    vault = Vault(
        store=store,
        key_ring=key_ring,
        catalog=load_catalog(runtime.settings.providers_path),
        keys=EnvironmentKeys(store),
        clock=runtime.clock,
        public_base=runtime.settings.public_base,
        kick=relay.kick,
        revoke=partial(runtime.bus.request, timeout=REVOKE_TIMEOUT_SECONDS),
    )
    app[VAULT] = vault
    relay.start()
    servers = [
        await runtime.bus.serve(command, handler)
        for command, handler in command_handlers(vault).items()
    ]
    servers.append(await runtime.bus.subscribe_broadcast(
        queue_name(NAME, "cache"),
        [ConnectionCreated, ConnectionUpdated, ConnectionDeleted, RefreshFailed],
        partial(forget_cached_connection, store=store),
    ))
    servers.append(await runtime.bus.subscribe(
        queue_name(NAME, "on_refresh_failed"), [RefreshFailed],
        partial(on_refresh_failed, store=store),
    ))
    servers.append(await runtime.bus.subscribe_broadcast(
        queue_name(NAME, "integration_cache"), [IntegrationChanged],
        partial(forget_cached_integration, vault=vault),
    ))
    try:
        yield
    finally:
        # Finish the commands in hand, then publish what they committed.
        await asyncio.gather(*(server.stop() for server in servers), return_exceptions=True)
        await vault.background.drain()
        await relay.stop()
        for lane in (reads, writes):
            if lane is not None:
                await lane.close()
