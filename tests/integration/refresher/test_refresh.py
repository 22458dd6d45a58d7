"""Refreshing and revoking against a real local OAuth provider, the vault played on the bus."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from terapi_common import db
from terapi_common.clock import FakeClock
from terapi_common.crypto import connection_aad
from terapi_common.events import (
    ConnectionCreated,
    CredentialsRefreshed,
    GetConnectionCredentials,
    OperationFinished,
    RefreshFailed,
    RevokeCredentials,
    SealedConnection,
    StoreRefreshedCredentials,
)
from terapi_common.memory_bus import MemoryBus
from terapi_common.providers import Catalog, Provider
from terapi_refresher import handlers, revoke
from terapi_refresher.app import MIGRATIONS, SCHEMA
from terapi_refresher.refresh import Tools, integration_aad
from terapi_refresher.schedule import Scheduler
from terapi_refresher.store import PgStore
from tests.support.mock_provider import IssuedToken, MockProvider

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


class FakeVault:
    """The vault's side of the refresh contract, holding one connection's credentials."""

    def __init__(self, key_ring, env: int, credentials: dict, client) -> None:
        self.key_ring, self.env = key_ring, env
        self.credentials = credentials
        self.client = client
        self.version = 1
        self.stored: list[dict] = []

    async def get(self, command: GetConnectionCredentials) -> SealedConnection:
        aad = connection_aad(self.env, command.integration_id, command.connection_id)
        return SealedConnection(
            connection_id=command.connection_id, integration_id=command.integration_id,
            provider="mock", auth_mode="OAUTH2", environment_name="dev", version=self.version,
            sealed_credentials=self.key_ring.seal(self.credentials, aad=aad),
            sealed_config=self.key_ring.seal(
                {"client_id": self.client.client_id, "client_secret": self.client.client_secret},
                aad=integration_aad(self.env, command.integration_id)),
        )

    async def store(self, command: StoreRefreshedCredentials) -> CredentialsRefreshed:
        if command.expected_version != self.version:
            return CredentialsRefreshed(stored=False)
        aad = connection_aad(self.env, command.integration_id, command.connection_id)
        self.credentials = self.key_ring.unseal(command.sealed_credentials, aad=aad)
        self.stored.append(self.credentials)
        self.version += 1
        return CredentialsRefreshed(stored=True, version=self.version)


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
        published.append(event)

    await bus.subscribe("terapi.test.observer", [OperationFinished, RefreshFailed], record)
    catalog = Catalog({"mock": Provider(
        name="mock", display_name="Mock", auth_mode="OAUTH2",
        authorization_url=f"{base}/oauth/authorize", token_url=f"{base}/oauth/token",
        revocation_url=f"{base}/oauth/revoke")})
    clock = FakeClock(NOW)
    store = PgStore(pool)
    async with aiohttp.ClientSession() as http:
        tools = Tools(bus=bus, key_ring=key_ring, catalog=catalog, http=http, clock=clock)
        event = ConnectionCreated(environment_id=env, connection_id="alice", integration_id="crm",
                                  provider="mock", auth_mode="OAUTH2", environment="dev",
                                  expires_at=NOW + timedelta(minutes=1))
        await handlers.on_connection_stored(event, store=store, clock=clock, consumer="c")
        clock.advance(seconds=10)
        yield {"provider": provider, "vault": vault, "store": store, "tools": tools,
               "published": published, "env": env, "base": base, "bus": bus}
    await bus.close()


async def _wait_published(published: list, kind: type) -> list:
    import asyncio

    for _ in range(200):
        found = [e for e in published if isinstance(e, kind)]
        if found:
            return found
        await asyncio.sleep(0.01)
    return []


async def test_due_connection_gets_working_new_tokens(setup) -> None:
    scheduler = Scheduler(setup["store"], setup["tools"])
    assert await scheduler.run_once() == 1
    renewed = setup["vault"].stored[-1]
    assert renewed["access_token"] != "at-old" and renewed["access_token"] in (
        setup["provider"].access_tokens)
    assert renewed["refresh_token"] != "rt-original"  # the provider rotated it
    assert "rt-original" not in setup["provider"].refresh_tokens
    finished = await _wait_published(setup["published"], OperationFinished)
    assert finished[0].kind == "refresh" and finished[0].status == "success"


async def test_refreshed_connection_is_rescheduled_before_its_new_expiry(setup) -> None:
    scheduler = Scheduler(setup["store"], setup["tools"])
    await scheduler.run_once()
    store, env = setup["store"], setup["env"]
    assert await store.due(env, until=NOW + timedelta(minutes=50)) == []
    assert await store.due(env, until=NOW + timedelta(minutes=57)) == ["alice"]


async def test_refresh_is_skipped_while_another_replica_holds_the_lock(setup) -> None:
    scheduler = Scheduler(setup["store"], setup["tools"])
    key = f"refresh:{setup['env']}:crm:alice"
    async with setup["store"].exclusive(key) as held:
        assert held
        await scheduler.run_once()
    assert setup["vault"].stored == []


async def test_claimed_refresh_is_not_claimed_again_by_another_replica(setup) -> None:
    store = setup["store"]
    first = await store.claim_due(now=setup["tools"].clock.now(), lease=timedelta(minutes=2),
                                  limit=10)
    second = await store.claim_due(now=setup["tools"].clock.now(), lease=timedelta(minutes=2),
                                   limit=10)
    assert [d.connection_id for d in first if d.environment_id == setup["env"]] == ["alice"]
    assert [d for d in second if d.environment_id == setup["env"]] == []


async def test_dead_refresh_token_stops_refreshing_and_tells_the_app(setup) -> None:
    setup["vault"].credentials["refresh_token"] = "rt-revoked-by-user"
    scheduler = Scheduler(setup["store"], setup["tools"])
    await scheduler.run_once()
    failed = await _wait_published(setup["published"], RefreshFailed)
    assert failed[0].error.code == "token_exchange_failed"
    assert await setup["store"].due(setup["env"], until=NOW + timedelta(days=30)) == []


async def test_passing_failure_is_retried_later_without_telling_the_app(setup) -> None:
    setup["provider"].behaviour.token_status = 503
    setup["provider"].behaviour.token_error = "temporarily_unavailable"
    scheduler = Scheduler(setup["store"], setup["tools"])
    await scheduler.run_once()
    now = setup["tools"].clock.now()
    assert await setup["store"].due(setup["env"], until=now + timedelta(seconds=10)) == []
    assert await setup["store"].due(setup["env"], until=now + timedelta(minutes=2)) == ["alice"]
    assert [e for e in setup["published"] if isinstance(e, RefreshFailed)] == []


async def test_revocation_reaches_the_provider(setup, key_ring) -> None:
    env, vault = setup["env"], setup["vault"]
    command = RevokeCredentials(
        environment_id=env, integration_id="crm", connection_id="alice", provider="mock",
        sealed_credentials=key_ring.seal(vault.credentials,
                                         aad=connection_aad(env, "crm", "alice")),
        sealed_config=key_ring.seal({"client_id": vault.client.client_id,
                                     "client_secret": vault.client.client_secret},
                                    aad=integration_aad(env, "crm")))
    result = await revoke.on_revoke_credentials(command, tools=setup["tools"])
    assert result.revoked is True
    assert setup["provider"].revoked == ["rt-original"]
