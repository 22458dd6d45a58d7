"""Turning settings into running resources: the key ring, the database and the bus."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from terapi_common.amqp_bus import AmqpBus
from terapi_common.bus import Bus
from terapi_common.crypto import KeyRing, KeyRingError, generate_key
from terapi_common.db import create_pool
from terapi_common.embedded import start_embedded_postgres
from terapi_common.memory_bus import MemoryBus
from terapi_common.runtime import Runtime, RuntimeFactory
from terapi_common.settings import TerapiSettings


class BootError(Exception):
    """A setting is missing or wrong; the message tells the operator what to do."""


def key_ring_from_settings(settings: TerapiSettings) -> KeyRing | None:
    if settings.encryption_key is None:
        return None
    try:
        return KeyRing.from_spec(settings.encryption_key.get_secret_value(),
                                 active=settings.encryption_key_version)
    except KeyRingError as exc:
        raise BootError(f"TERAPI_ENCRYPTION_KEY: {exc}") from None


def local_key_ring(settings: TerapiSettings) -> KeyRing:
    """The configured key ring, else one kept in the data dir (made on first use)."""
    configured = key_ring_from_settings(settings)
    if configured is not None:
        return configured
    path = settings.home / "encryption.key"
    if not path.exists():
        settings.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(generate_key() + "\n")
        print(
            f"terapi: generated an encryption key in {path} (mode 0600). Back it up: "
            "without it stored credentials cannot be read. Set TERAPI_ENCRYPTION_KEY "
            "to use your own.",
            file=sys.stderr,
        )
    try:
        return KeyRing.from_spec(path.read_text().strip())
    except KeyRingError as exc:
        raise BootError(f"{path}: {exc}") from None


async def database_url(settings: TerapiSettings) -> str:
    """The configured database, else the embedded one under TERAPI_HOME."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return await start_embedded_postgres(Path(settings.home) / "pgdata")


def make_bus(settings: TerapiSettings) -> Bus:
    if settings.amqp_url is None:
        bus = MemoryBus(prefetch=settings.amqp_prefetch)
        bus.rpc_timeout = settings.rpc_timeout_seconds
        return bus
    return AmqpBus(
        settings.amqp_url.get_secret_value(), prefetch=settings.amqp_prefetch,
        rpc_timeout=settings.rpc_timeout_seconds,
    )


def runtime_factory(settings: TerapiSettings, key_ring: KeyRing | None) -> RuntimeFactory:
    """Opens the pool, the bus and an HTTP client; closes them in reverse order."""

    async def factory() -> AsyncIterator[Runtime]:
        pool = await create_pool(
            await database_url(settings), min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
        )
        bus = make_bus(settings)
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        try:
            await bus.connect()
            yield Runtime(settings=settings, pool=pool, bus=bus, key_ring=key_ring, http=http)
        finally:
            await bus.close()
            await http.close()
            await pool.close()

    return factory
