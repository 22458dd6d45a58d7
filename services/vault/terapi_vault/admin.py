"""Operator tasks the CLI runs: default environments and showing an environment's keys."""

from __future__ import annotations

import asyncpg

from terapi_common.crypto import DecryptionError, KeyRing
from terapi_common.db import migrate
from terapi_vault import domain, errors, handlers
from terapi_vault.app import MIGRATIONS, SCHEMA
from terapi_vault.store import PgStore


async def ensure_default_environments(pool: asyncpg.Pool, key_ring: KeyRing) -> None:
    """Apply the vault's migrations, then create `dev` and `prod` when missing (idempotent)."""
    async with pool.acquire() as conn:
        await migrate(conn, SCHEMA, MIGRATIONS)
    await handlers.create_default_environments(PgStore(pool), key_ring)


async def environment_keys(pool: asyncpg.Pool, key_ring: KeyRing, name: str) -> dict[str, str]:
    """{"environment", "public_key", "secret_key", "webhook_secret"} of environment `name`."""
    store = PgStore(pool)
    environment = await store.environment_by_name(name)
    secrets = await store.environment_secrets(environment.id) if environment else None
    if environment is None or secrets is None:
        raise errors.environment_not_found(name)
    try:
        secret_key = key_ring.decrypt_json(
            secrets.secret_key_encrypted, aad=domain.secret_key_aad(environment.id)
        )
        webhook_secret = key_ring.decrypt_json(
            secrets.webhook_secret_encrypted, aad=domain.webhook_secret_aad(environment.id)
        )
    except DecryptionError:
        raise errors.keys_unreadable(name) from None
    return {
        "environment": environment.name,
        "public_key": environment.public_key,
        "secret_key": secret_key,
        "webhook_secret": webhook_secret,
    }
