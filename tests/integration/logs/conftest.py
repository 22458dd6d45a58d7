"""The logs service on MemoryBus and real PostgreSQL, with a fake vault for secret keys."""

from __future__ import annotations

import asyncio
import inspect
import random
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from terapi_common.crypto import sha256_hex
from terapi_common.db import create_pool
from terapi_common.errors import UnauthorizedError
from terapi_common.events import AuthenticateSecretKey, EnvironmentIdentity
from terapi_common.memory_bus import MemoryBus
from terapi_common.runtime import Runtime, build_app
from terapi_common.settings import TerapiSettings
from terapi_logs import app as logs_app


def new_environment_id() -> int:
    """An environment no other test uses."""
    return random.randint(1_000_000, 2**31 - 1)


async def wait_for(condition: Callable[[], Any], within: float = 5.0) -> None:
    """Poll until `condition()` (sync or async) is truthy, or fail at the deadline."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class FakeVault:
    """The vault's secret-key lookup: digests of the keys it issued, per environment."""

    def __init__(self) -> None:
        self._environments: dict[str, EnvironmentIdentity] = {}

    def issue_key(self, environment_id: int) -> str:
        key = "sk_test_" + secrets.token_urlsafe(24)
        self._environments[sha256_hex(key)] = EnvironmentIdentity(
            environment_id=environment_id, environment_name="dev"
        )
        return key

    async def authenticate(self, command: AuthenticateSecretKey) -> EnvironmentIdentity:
        found = self._environments.get(command.key_digest)
        if found is None:
            raise UnauthorizedError("unknown secret key", code="invalid_secret_key")
        return found


@pytest.fixture
async def vault(bus: MemoryBus) -> FakeVault:
    fake = FakeVault()
    await bus.serve(AuthenticateSecretKey, fake.authenticate)
    return fake


@pytest.fixture
async def client(aiohttp_client, database_url: str, bus: MemoryBus, vault: FakeVault):
    """The logs service under a test client."""

    async def runtime() -> AsyncIterator[Runtime]:
        pool = await create_pool(database_url, min_size=1, max_size=5)
        yield Runtime(settings=TerapiSettings(), pool=pool, bus=bus, key_ring=None)
        await pool.close()

    return await aiohttp_client(build_app([logs_app], runtime))
