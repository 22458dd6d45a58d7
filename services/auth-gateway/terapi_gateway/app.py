"""The auth gateway: connect sessions and authorization flows at Terapi's public edge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from terapi_common.auth import KeyAuthenticator
from terapi_common.runtime import RUNTIME

from terapi_gateway import api
from terapi_gateway.handlers import Gateway
from terapi_gateway.keys import GATEWAY
from terapi_gateway.store import PgStore

NAME = "gateway"
SCHEMA = "gateway"
MIGRATIONS = Path(__file__).parent / "migrations"


def setup(app: web.Application) -> None:
    """Add the gateway's routes, its CORS headers and the context that wires it."""
    app.router.add_routes(api.routes())
    app.on_response_prepare.append(api.add_cors_headers)
    app.cleanup_ctx.append(_gateway_context)


async def _gateway_context(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME]
    app[GATEWAY] = Gateway(
        store=PgStore(runtime.pool),
        bus=runtime.bus,
        key_ring=runtime.require_key_ring(),
        clock=runtime.clock,
        keys=KeyAuthenticator(runtime.bus),
        public_base=runtime.settings.public_base,
    )
    # Nothing runs in the background yet: attempts publish their events before they
    # answer, so in-flight requests finishing is all a graceful stop needs.
    yield
