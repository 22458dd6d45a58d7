"""The auth gateway: connect sessions and authorization flows at Terapi's public edge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import aiohttp
import structlog
from aiohttp import web

from terapi_common import maintenance
from terapi_common.auth import KeyAuthenticator
from terapi_common.bus import BackgroundPublisher
from terapi_common.db import OutboxRelay
from terapi_common.events import EnvironmentChanged, IntegrationChanged
from terapi_common.providers import load_catalog
from terapi_common.runtime import RUNTIME
from terapi_common.topology import queue_name
from terapi_gateway import api, connect_api, handlers, oauth_api
from terapi_gateway.handlers import Gateway
from terapi_gateway.keys import GATEWAY
from terapi_gateway.store import SCHEMA, PgStore

NAME = "gateway"
MIGRATIONS = Path(__file__).parent / "migrations"
PURGE_INTERVAL_SECONDS = 600.0

log = structlog.get_logger("terapi.gateway")


def setup(app: web.Application) -> None:
    """Add the gateway's routes, its CORS headers and the context that wires it."""
    app.router.add_routes(api.routes())
    app.router.add_routes(oauth_api.routes())
    app.router.add_routes(connect_api.routes())
    app.on_response_prepare.append(api.add_cors_headers)
    app.cleanup_ctx.append(_gateway_context)


async def _gateway_context(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    own_http = runtime.http is None
    http = runtime.http or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    relay = OutboxRelay(runtime.pool, SCHEMA, runtime.bus)
    gateway = Gateway(
        store=PgStore(runtime.pool),
        bus=runtime.bus,
        key_ring=runtime.require_key_ring(),
        clock=runtime.clock,
        keys=KeyAuthenticator(runtime.bus),
        public_base=runtime.settings.public_base,
        catalog=load_catalog(runtime.settings.providers_path),
        http=http,
        publisher=BackgroundPublisher(runtime.bus),
        kick=relay.kick,
    )
    relay.start()
    app[GATEWAY] = gateway
    integration_changes = await runtime.bus.subscribe_broadcast(
        queue_name(NAME, "integration_cache"), [IntegrationChanged],
        partial(handlers.on_integration_changed, gateway=gateway))
    environment_changes = await runtime.bus.subscribe_broadcast(
        queue_name(NAME, "key_cache"), [EnvironmentChanged],
        partial(handlers.on_environment_changed, gateway=gateway))
    purge = maintenance.start(lambda: gateway.store.purge_expired(now=gateway.clock.now()),
                              every=PURGE_INTERVAL_SECONDS, name="gateway expired flows")
    yield
    # In-flight requests have finished by now; their events may still be on the way.
    await integration_changes.stop()
    await environment_changes.stop()
    await gateway.publisher.drain()
    await relay.stop()
    await maintenance.stop(purge)
    if own_http:
        await http.close()
