"""A refresher wired to a real local OAuth provider, with the vault played on the bus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from terapi_common import db
from terapi_common.clock import FakeClock
from terapi_common.crypto import connection_aad
from terapi_common.errors import ServiceUnavailableError
from terapi_common.events import (
    ConnectionCreated,
    CredentialsRefreshed,
    GetConnectionCredentials,
    OperationFinished,
    RefreshFailed,
    SealedConnection,
    StoreRefreshedCredentials,
)
from terapi_common.memory_bus import MemoryBus
from terapi_common.providers import Catalog, Provider
from terapi_refresher import handlers
from terapi_refresher.app import MIGRATIONS, SCHEMA
from terapi_refresher.refresh import Tools, integration_aad
from terapi_refresher.store import PgStore
from tests.conftest import fresh_database
from tests.support.mock_provider import IssuedToken, MockProvider

NOW = datetime.now(UTC)


class FakeVault:
    """The vault's side of the refresh contract, holding one connection's credentials."""

    def __init__(self, key_ring, env: int, credentials: dict, client) -> None:
        self.key_ring, self.env = key_ring, env
        self.credentials = credentials
        self.client = client
        self.version = 1
        self.stored: list[dict] = []
        self.reads = 0
        self.unanswered_reads = 0
        self.after_read: Callable[[], None] | None = None
        self.unanswered_stores = 0  # how many write-backs go unanswered (vault restarting)
        self.before_store: Callable[[], Awaitable[None]] | None = None
        self.credentials_aad: str | None = None  # set to seal under the wrong context

    async def get(self, command: GetConnectionCredentials) -> SealedConnection:
        if self.unanswered_reads:
            self.unanswered_reads -= 1
            raise ServiceUnavailableError("the vault did not answer")
        self.reads += 1
        aad = self.credentials_aad or connection_aad(self.env, command.integration_id,
                                                     command.connection_id)
        sealed = SealedConnection(
            connection_id=command.connection_id, integration_id=command.integration_id,
            provider="mock", auth_mode="OAUTH2", environment_name="dev", version=self.version,
            sealed_credentials=self.key_ring.seal(self.credentials, aad=aad),
            sealed_config=self.key_ring.seal(
                {"client_id": self.client.client_id, "client_secret": self.client.client_secret},
                aad=integration_aad(self.env, command.integration_id)),
        )
        if self.after_read is not None:
            self.after_read()
        return sealed

    async def store(self, command: StoreRefreshedCredentials) -> CredentialsRefreshed:
        if self.unanswered_stores:
            self.unanswered_stores -= 1
            raise ServiceUnavailableError("the vault did not answer")
        if self.before_store is not None:
            await self.before_store()
        if command.expected_version != self.version:
            return CredentialsRefreshed(stored=False)
        aad = connection_aad(self.env, command.integration_id, command.connection_id)
        self.credentials = self.key_ring.unseal(command.sealed_credentials, aad=aad)
        self.stored.append(self.credentials)
        self.version += 1
        return CredentialsRefreshed(stored=True, version=self.version)


@pytest.fixture
async def pool():
    """A database of this test's own: the refresh loop claims every due row it can see."""
    with fresh_database() as url:
        created = await db.create_pool(url, min_size=1, max_size=5)
        yield created
        await created.close()


@pytest.fixture
async def provider_server(aiohttp_server):
    provider = MockProvider()
    server = await aiohttp_server(provider.app())
    return provider, f"http://127.0.0.1:{server.port}"


@pytest.fixture
async def setup(pool, key_ring, provider_server):
    provider, base = provider_server
    async with pool.acquire() as conn:
        await db.migrate(conn, SCHEMA, Path(MIGRATIONS))
    client = provider.add_client()
    provider.refresh_tokens["rt-original"] = IssuedToken(client.client_id, "read",
                                                         time.time() + 999)
    env = int(time.time_ns() % 1_000_000_000)
    vault = FakeVault(key_ring, env, {"type": "OAUTH2", "access_token": "at-old",
                                      "refresh_token": "rt-original", "scopes": ["read"],
                                      "requested_scopes": ["read"]}, client)
    bus = MemoryBus()
    await bus.serve(GetConnectionCredentials, vault.get)
    await bus.serve(StoreRefreshedCredentials, vault.store)
    published: list = []

    async def record(event) -> None:
        if event.environment_id == env:
            published.append(event)

    await bus.subscribe("terapi.test.observer", [OperationFinished, RefreshFailed], record)
    relay = db.OutboxRelay(pool, SCHEMA, bus, interval=0.05)
    relay.start()
    catalog = Catalog({"mock": Provider(
        name="mock", display_name="Mock", auth_mode="OAUTH2",
        authorization_url=f"{base}/oauth/authorize", token_url=f"{base}/oauth/token",
        revocation_url=f"{base}/oauth/revoke")})
    clock = FakeClock(NOW)
    store = PgStore(pool)
    async with aiohttp.ClientSession() as http:
        tools = Tools(bus=bus, key_ring=key_ring, catalog=catalog, http=http, clock=clock,
                      write_back_pause=0.01)
        event = ConnectionCreated(environment_id=env, connection_id="alice", integration_id="crm",
                                  provider="mock", auth_mode="OAUTH2", environment="dev",
                                  expires_at=NOW + timedelta(minutes=1))
        await handlers.on_connection_stored(event, store=store, clock=clock, consumer="c")
        clock.advance(seconds=10)
        yield {"provider": provider, "vault": vault, "store": store, "tools": tools,
               "published": published, "env": env, "base": base, "bus": bus, "clock": clock,
               "pool": pool}
    await relay.stop()
    await bus.close()


async def wait_published(published: list, kind: type, count: int = 1, *,
                         within: float = 3.0) -> list:
    """The events of `kind` seen so far, once there are `count` of them (or the deadline)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = [e for e in published if isinstance(e, kind)]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.01)
    return [e for e in published if isinstance(e, kind)]
