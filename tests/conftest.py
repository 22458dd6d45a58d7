"""Fixtures shared by every tier: real servers on 127.0.0.1, unique names per test."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import asyncpg
import pytest

POSTGRES_URL = os.environ.get(
    "TERAPI_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("TERAPI_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def unique(prefix: str) -> str:
    """A name no other test uses, instead of truncating shared tables."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def run_sync(coroutine):
    """Run a coroutine to completion from sync code, even under a running loop.

    Playwright's sync API keeps an event loop in the main thread, so asyncio.run is
    done on a short-lived thread of its own.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create an empty PostgreSQL database, yield its URL, drop it afterwards."""
    name = f"terapi_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_sync(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(POSTGRES_URL, name)
    finally:
        run_sync(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def fresh_vhost(prefix: str = "terapi-test") -> Iterator[str]:
    """A RabbitMQ vhost of its own (durable queues start empty), deleted afterwards."""
    vhost = f"{prefix}-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, timeout=60)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*",
                    ".*"], check=True, timeout=60)
    try:
        yield f"{AMQP_URL.rstrip('/')}/{vhost}"
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False, timeout=60)


# Redelivery delays for tests: the production ones (seconds to minutes) with the same shape.
FAST_RETRIES = (0.02, 0.05, 0.1)

@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """This run's own RabbitMQ vhost, so no queue outlives the tests."""
    with fresh_vhost() as url:
        yield url


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    with fresh_database() as url:
        yield url


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A connection pool on the run's database (JSON columns decode to Python values)."""
    from terapi_common.db import create_pool

    created = await create_pool(database_url, min_size=1, max_size=5)
    yield created
    await created.close()


@pytest.fixture
async def bus():
    """An in-process bus with RabbitMQ's semantics, closed after the test."""
    from terapi_common.memory_bus import MemoryBus

    instance = MemoryBus(retry_delays=FAST_RETRIES)
    await instance.connect()
    yield instance
    await instance.close()


@pytest.fixture
def key_ring_spec() -> str:
    from terapi_common.crypto import generate_key

    return generate_key()


@pytest.fixture
def key_ring(key_ring_spec: str):
    from terapi_common.crypto import KeyRing

    return KeyRing.from_spec(key_ring_spec)
