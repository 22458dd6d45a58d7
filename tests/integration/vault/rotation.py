"""Vault rows written under one key ring, in a database of their own, and read back raw."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from terapi_common.crypto import KeyRing, connection_aad, integration_aad
from terapi_common.db import create_pool, migrate
from terapi_vault import domain
from terapi_vault.app import MIGRATIONS, SCHEMA
from terapi_vault.handlers import create_environment
from terapi_vault.store import NewConnection, PgStore, StoredEvents
from tests.conftest import fresh_database, unique

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@asynccontextmanager
async def vault_database() -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """A migrated vault of its own: re-encryption walks whole tables."""
    with fresh_database() as url:
        pool = await create_pool(url, min_size=1, max_size=4)
        try:
            async with pool.acquire() as conn:
                await migrate(conn, SCHEMA, MIGRATIONS)
            yield url, pool
        finally:
            await pool.close()


@dataclass
class Written:
    """What was stored, in the clear, to compare with what reads back."""

    environments: list[str] = field(default_factory=list)
    client_secrets: dict[tuple[int, str], str] = field(default_factory=dict)
    credentials: dict[tuple[int, str, str], dict[str, Any]] = field(default_factory=dict)


async def write_rows(pool: asyncpg.Pool, key_ring: KeyRing, *, environments: int = 2,
                     connections: int = 3) -> Written:
    """Environments, an OAuth integration with a client secret, an API-key integration
    without one, and connections of the latter, all encrypted with `key_ring`."""
    store, written = PgStore(pool), Written()
    for _ in range(environments):
        name = unique("env")
        await create_environment(store, key_ring, name)
        written.environments.append(name)
    environment = await store.environment_by_name(written.environments[0])
    assert environment is not None
    env_id = environment.id
    secret = unique("client-secret")
    await add_integration(store, key_ring, env_id, "github", client_secret=secret)
    written.client_secrets[(env_id, "github")] = secret
    await add_integration(store, key_ring, env_id, "api-key", client_secret=None)
    for _ in range(connections):
        key = (env_id, "api-key", unique("conn"))
        written.credentials[key] = {"type": "API_KEY", "api_key": unique("k")}
        await add_connection(store, key_ring, key, written.credentials[key])
    return written


async def add_integration(store: PgStore, key_ring: KeyRing, env_id: int, integration_id: str,
                          *, client_secret: str | None) -> None:
    aad = integration_aad(env_id, integration_id)
    await store.insert_integration(domain.Integration(
        environment_id=env_id, integration_id=integration_id, provider=integration_id,
        auth_mode="OAUTH2" if client_secret else "API_KEY",
        client_id="client-1" if client_secret else None,
        client_secret_encrypted=key_ring.encrypt_json(client_secret, aad=aad)
        if client_secret else None,
        scopes=[], provider_config={}, created_at=NOW, updated_at=NOW,
    ))


async def add_connection(store: PgStore, key_ring: KeyRing, key: tuple[int, str, str],
                         credentials: dict[str, Any]) -> None:
    env_id, integration_id, connection_id = key
    created, updated = domain.stored_events(
        environment_name="env", end_user=None, environment_id=env_id,
        connection_id=connection_id, integration_id=integration_id, provider=integration_id,
        auth_mode="API_KEY",
    )
    await store.upsert_connection(NewConnection(
        environment_id=env_id, integration_id=integration_id, connection_id=connection_id,
        provider=integration_id, auth_mode="API_KEY",
        credentials_encrypted=key_ring.encrypt_json(credentials, aad=connection_aad(*key)),
        connection_config={}, end_user=None, expires_at=None, now=NOW,
    ), events=StoredEvents(created, updated))


async def ciphertexts(pool: asyncpg.Pool) -> dict[str, bytes]:
    """Every ciphertext the vault holds, by table, column and row."""
    found: dict[str, bytes] = {}
    for row in await pool.fetch("SELECT * FROM vault.environments"):
        found[f"environments:{row['id']}:secret_key"] = bytes(row["secret_key_encrypted"])
        found[f"environments:{row['id']}:webhook"] = bytes(row["webhook_secret_encrypted"])
    for row in await pool.fetch(
        "SELECT * FROM vault.integrations WHERE client_secret_encrypted IS NOT NULL"
    ):
        name = f"integrations:{row['environment_id']}:{row['integration_id']}"
        found[name] = bytes(row["client_secret_encrypted"])
    for row in await pool.fetch("SELECT * FROM vault.connections"):
        name = f"connections:{row['environment_id']}:{row['integration_id']}:" \
               f"{row['connection_id']}"
        found[name] = bytes(row["credentials_encrypted"])
    return found


async def credentials_of(pool: asyncpg.Pool, key: tuple[int, str, str]) -> bytes:
    return bytes(await pool.fetchval(
        "SELECT credentials_encrypted FROM vault.connections WHERE environment_id = $1 "
        "AND integration_id = $2 AND connection_id = $3", *key,
    ))
