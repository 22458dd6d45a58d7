"""Wiring shared by every service: the resources they run on and the app they plug into.

A service module exposes `NAME`, `SCHEMA`, `MIGRATIONS` and `setup(app)`; `setup` adds
its routes and a cleanup context that reads the shared `Runtime` from `app[RUNTIME]`.
`build_app` puts one or several services on one aiohttp app, so the same code runs as
one pod per service or all together under `terapi up`.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import asyncpg
from aiohttp import web

from terapi_common import db
from terapi_common import logging as terapi_logging
from terapi_common.bus import Bus
from terapi_common.clock import Clock, SystemClock
from terapi_common.crypto import KeyRing
from terapi_common.http import (
    SHUTTING_DOWN,
    add_health_routes,
    error_middleware,
    request_log_middleware,
)
from terapi_common.settings import TerapiSettings


class ServiceModule(Protocol):
    """What a service package's `app` module offers to the launcher."""

    NAME: str
    SCHEMA: str
    MIGRATIONS: Path

    def setup(self, app: web.Application) -> None: ...


@dataclass
class Runtime:
    """Resources shared by the services of one process."""

    settings: TerapiSettings
    pool: asyncpg.Pool
    bus: Bus
    key_ring: KeyRing | None
    clock: Clock = field(default_factory=SystemClock)
    http: aiohttp.ClientSession | None = None

    def require_key_ring(self) -> KeyRing:
        if self.key_ring is None:
            raise RuntimeError("TERAPI_ENCRYPTION_KEY is required by this service")
        return self.key_ring

    def require_http(self) -> aiohttp.ClientSession:
        if self.http is None:
            raise RuntimeError("no HTTP client session in this runtime")
        return self.http


RUNTIME = web.AppKey("runtime", Runtime)
RuntimeFactory = Callable[[], "AsyncIterator[Runtime]"]


async def apply_migrations(pool: asyncpg.Pool, services: Sequence[ServiceModule]) -> None:
    async with pool.acquire() as conn:
        for service in services:
            await db.migrate(conn, service.SCHEMA, service.MIGRATIONS)


def build_app(
    services: Sequence[ServiceModule],
    runtime_factory: RuntimeFactory,
    *,
    migrate: bool = True,
) -> web.Application:
    """One aiohttp app serving `services` on a runtime made by `runtime_factory`."""
    app = web.Application(
        middlewares=[request_log_middleware, error_middleware], client_max_size=1024**2
    )

    async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
        async with _as_context(runtime_factory) as runtime:
            app[RUNTIME] = runtime
            if migrate:
                await apply_migrations(runtime.pool, services)
            yield

    app.cleanup_ctx.append(runtime_ctx)
    for service in services:
        service.setup(app)
    app.cleanup_ctx.append(_log_flusher)
    app.on_startup.append(_freeze_startup_objects)
    app.on_shutdown.append(_mark_shutting_down)
    add_health_routes(app, {"database": _database_ready(app), "broker": _broker_ready(app)})
    return app


async def _log_flusher(_app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(terapi_logging.flush_periodically(), name="log flush")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    terapi_logging.flush()


async def _freeze_startup_objects(_app: web.Application) -> None:
    # Objects built at start-up (catalog, routes, models) live as long as the process:
    # keeping them out of the collector's scans shortens its pauses under load.
    gc.collect()
    gc.freeze()


async def _mark_shutting_down(app: web.Application) -> None:
    app[SHUTTING_DOWN].set()


def _database_ready(app: web.Application) -> Callable[[], Any]:
    async def check() -> bool:
        runtime = app.get(RUNTIME)
        if runtime is None:
            return False
        async with runtime.pool.acquire(timeout=2) as conn:
            return await conn.fetchval("SELECT 1") == 1

    return check


def _broker_ready(app: web.Application) -> Callable[[], Any]:
    async def check() -> bool:
        runtime = app.get(RUNTIME)
        return runtime is not None and await runtime.bus.is_healthy()

    return check


class _as_context:
    """Use an async-generator factory as `async with`."""

    def __init__(self, factory: RuntimeFactory) -> None:
        self._gen = factory()

    async def __aenter__(self) -> Runtime:
        return await self._gen.__anext__()

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._gen.__anext__()
        except StopAsyncIteration:
            return


def run_app(
    app: web.Application, *, host: str, port: int, grace: float, reuse_port: bool = False
) -> None:
    """Serve until SIGTERM/SIGINT, then stop consuming, finish in-flight work and close."""
    web.run_app(
        app, host=host, port=port, shutdown_timeout=grace, access_log=None,
        handle_signals=True, print=None, loop=_new_loop(), reuse_port=reuse_port or None,
    )


def _new_loop() -> Any:
    import asyncio

    try:
        import uvloop
    except ImportError:  # pragma: no cover  # uvloop is optional on exotic platforms
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
