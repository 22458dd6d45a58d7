"""Fixtures for the vault: the app on a real database and an in-process bus, fresh environments."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from terapi_common.crypto import KeyRing, connection_aad, generate_key
from terapi_common.db import create_pool
from terapi_common.events import EndUser, Event, StoreConnection
from terapi_common.memory_bus import MemoryBus
from terapi_common.runtime import Runtime, build_app
from terapi_common.settings import TerapiSettings
from terapi_vault import app as vault_app
from terapi_vault.admin import environment_keys
from terapi_vault.handlers import create_environment
from terapi_vault.store import PgStore
from tests.conftest import unique

PROVIDERS = Path(__file__).parent / "providers.yaml"
PUBLIC_URL = "http://terapi.test"


class VaultTestSettings(TerapiSettings):
    providers_path: str | None = None


@pytest.fixture(scope="session")
def key_ring_spec() -> str:
    """One key ring for the whole run: environments made by one test are read by the next."""
    return generate_key()


@pytest.fixture
async def client(
    aiohttp_client, database_url: str, key_ring: KeyRing, bus: MemoryBus
) -> TestClient:
    """The vault app, started: migrations applied, commands served on `bus`."""

    async def runtime() -> AsyncIterator[Runtime]:
        pool = await create_pool(database_url, min_size=1, max_size=5)
        settings = VaultTestSettings(providers_path=str(PROVIDERS), public_url=PUBLIC_URL)
        yield Runtime(settings=settings, pool=pool, bus=bus, key_ring=key_ring)
        await pool.close()

    return await aiohttp_client(build_app([vault_app], runtime))


@dataclass(frozen=True)
class Env:
    """A fresh environment of this test, with its keys in the clear."""

    id: int
    name: str
    public_key: str
    secret_key: str
    webhook_secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret_key}"}


async def new_env(pool, key_ring: KeyRing) -> Env:
    name = unique("env")
    store = PgStore(pool)
    await create_environment(store, key_ring, name)
    keys = await environment_keys(pool, key_ring, name)
    environment = await store.environment_by_name(name)
    assert environment is not None
    return Env(
        id=environment.id, name=name, public_key=keys["public_key"],
        secret_key=keys["secret_key"], webhook_secret=keys["webhook_secret"],
    )


@pytest.fixture
async def env(client: TestClient, pool, key_ring: KeyRing) -> Env:
    return await new_env(pool, key_ring)


class Api:
    """The vault's HTTP API as one environment's backend calls it."""

    def __init__(self, client: TestClient, env: Env) -> None:
        self.client = client
        self.env = env

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {**self.env.headers, **kwargs.pop("headers", {})}
        async with self.client.request(method, path, headers=headers, **kwargs) as response:
            body = await response.json() if response.status != 204 else None
            return response.status, body

    async def create_integration(self, provider: str = "api-key", **body: Any) -> str:
        integration_id = body.pop("integration_id", None) or unique("int")
        status, answer = await self.call(
            "POST", "/integrations",
            json={"integration_id": integration_id, "provider": provider, **body},
        )
        assert status == 201, answer
        return integration_id


@pytest.fixture
def api(client: TestClient, env: Env) -> Api:
    return Api(client, env)


OAUTH2_CREDENTIALS = {
    "type": "OAUTH2", "client_id": "client-123", "client_secret": "s3cr3t-client-abcd",
    "scopes": ["read", "write"],
}


@pytest.fixture
async def api_key_integration(api: Api) -> str:
    """An integration of the generic API-key provider in the test's environment."""
    return await api.create_integration("api-key")


async def store_connection(
    bus: MemoryBus,
    key_ring: KeyRing,
    env: Env,
    integration_id: str,
    connection_id: str | None = None,
    *,
    auth_mode: str = "API_KEY",
    credentials: dict[str, Any] | None = None,
    end_user: EndUser | None = None,
    timeout: float | None = None,
    **fields: Any,
):
    """Store credentials the way the gateway does: sealed for the connection."""
    connection_id = connection_id or unique("conn")
    values = credentials if credentials is not None else {"type": "API_KEY", "api_key": "k-1"}
    sealed = key_ring.seal(values, aad=connection_aad(env.id, integration_id, connection_id))
    return await bus.request(StoreConnection(
        environment_id=env.id, integration_id=integration_id, connection_id=connection_id,
        auth_mode=auth_mode, sealed_credentials=sealed, end_user=end_user, **fields,
    ), timeout=timeout)


async def collect(bus: MemoryBus, *event_types: type[Event]) -> list[Event]:
    """Events of these types published from now on, as the bus delivers them."""
    seen: list[Event] = []

    async def handler(event: Event) -> None:
        seen.append(event)

    await bus.subscribe(unique("terapi.test.vault"), list(event_types), handler)
    return seen


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
