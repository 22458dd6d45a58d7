"""`reencrypt` on real PostgreSQL: rows written under key 1 move to key 2, nothing else moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from terapi_common.crypto import KeyRing, connection_aad, generate_key, integration_aad
from terapi_vault import domain
from terapi_vault.admin import environment_keys, reencrypt
from terapi_vault.rotation_store import CONNECTIONS, EncryptedRow, EncryptedTable, PgRotationStore
from terapi_vault.store import PgStore
from tests.conftest import unique
from tests.integration.vault.rotation import (
    add_connection,
    ciphertexts,
    credentials_of,
    vault_database,
    write_rows,
)

pytestmark = pytest.mark.integration

OLD_KEY, NEW_KEY = generate_key(), generate_key()
OLD = KeyRing.from_spec(f"1:{OLD_KEY}")
ROTATED = KeyRing.from_spec(f"1:{OLD_KEY},2:{NEW_KEY}")
NEW_ONLY = KeyRing.from_spec(f"2:{NEW_KEY}")


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with vault_database() as (_, created):
        yield created


def counts(tallies: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {name: asdict(tally) for name, tally in tallies.items()}


def tally(rewritten: int = 0, already_current: int = 0, unreadable: int = 0) -> dict[str, int]:
    return {"rewritten": rewritten, "already_current": already_current, "unreadable": unreadable}


async def test_every_old_row_moves_to_the_newest_key_and_reads_the_same(pool) -> None:
    written = await write_rows(pool, OLD, environments=2, connections=3)
    keys_before = [await environment_keys(pool, OLD, name) for name in written.environments]

    result = await reencrypt(PgRotationStore(pool), ROTATED, batch_size=2)  # pages of two rows

    assert counts(result) == {
        "environments": tally(rewritten=2), "integrations": tally(rewritten=1),
        "connections": tally(rewritten=3),
    }
    assert {blob[0] for blob in (await ciphertexts(pool)).values()} == {2}
    # Version 1 can now be removed: a ring holding only key 2 reads everything.
    assert [await environment_keys(pool, NEW_ONLY, n) for n in written.environments] == (
        keys_before)
    store = PgStore(pool)
    for (env_id, integration_id), secret in written.client_secrets.items():
        integration = await store.get_integration(env_id, integration_id)
        assert NEW_ONLY.decrypt_json(
            integration.client_secret_encrypted,
            aad=integration_aad(env_id, integration_id),
        ) == secret
    for key, credentials in written.credentials.items():
        blob = await credentials_of(pool, key)
        assert NEW_ONLY.decrypt_json(blob, aad=connection_aad(*key)) == credentials


async def test_second_run_rewrites_nothing(pool) -> None:
    await write_rows(pool, OLD, environments=1, connections=2)
    await reencrypt(PgRotationStore(pool), ROTATED)
    after_first = await ciphertexts(pool)

    result = await reencrypt(PgRotationStore(pool), ROTATED)

    assert counts(result) == {
        "environments": tally(already_current=1), "integrations": tally(already_current=1),
        "connections": tally(already_current=2),
    }
    assert await ciphertexts(pool) == after_first


async def test_rewriting_changes_no_version_timestamp_or_event(pool) -> None:
    """The values are the same: nothing downstream may think a connection changed."""
    await write_rows(pool, OLD, environments=1, connections=2)
    query = (
        "SELECT (SELECT array_agg((version, updated_at) ORDER BY connection_id)"
        " FROM vault.connections),"
        " (SELECT array_agg(updated_at ORDER BY integration_id) FROM vault.integrations),"
        " (SELECT array_agg(updated_at ORDER BY id) FROM vault.environments),"
        " (SELECT count(*) FROM vault.outbox)"
    )
    before = await pool.fetchrow(query)
    await reencrypt(PgRotationStore(pool), ROTATED)
    assert await pool.fetchrow(query) == before


class RefreshingStore(PgRotationStore):
    """Refreshes one connection's credentials right after each page of them is read, as the
    refresher could between re-encryption's read and its write."""

    def __init__(self, pool: asyncpg.Pool, refreshed: dict[str, Any]) -> None:
        super().__init__(pool)
        self.refreshed = refreshed
        self.pool = pool
        self.keys: list[tuple[Any, ...]] = []

    async def encrypted_rows(self, table: EncryptedTable, *, after: tuple[Any, ...], limit: int
                          ) -> list[EncryptedRow]:
        rows = await super().encrypted_rows(table, after=after, limit=limit)
        if table is CONNECTIONS and rows:
            key = rows[0].key
            await self.pool.execute(
                "UPDATE vault.connections SET credentials_encrypted = $4, version = version + 1"
                " WHERE environment_id = $1 AND integration_id = $2 AND connection_id = $3",
                *key, ROTATED.encrypt_json(self.refreshed, aad=connection_aad(*key)),
            )
            self.keys.append(key)
        return rows


async def test_connection_refreshed_meanwhile_keeps_its_new_credentials(pool) -> None:
    written = await write_rows(pool, OLD, environments=1, connections=3)
    refreshed = {"type": "API_KEY", "api_key": "refreshed-meanwhile"}
    store = RefreshingStore(pool, refreshed)

    result = await reencrypt(store, ROTATED)

    (raced,) = store.keys
    assert NEW_ONLY.decrypt_json(await credentials_of(pool, raced),
                                 aad=connection_aad(*raced)) == refreshed
    assert counts(result)["connections"] == tally(rewritten=2, already_current=1)
    for key in written.credentials.keys() - {raced}:
        assert NEW_ONLY.decrypt_json(await credentials_of(pool, key),
                                     aad=connection_aad(*key)) == written.credentials[key]


async def test_swap_with_a_stale_ciphertext_changes_nothing(pool) -> None:
    written = await write_rows(pool, OLD, environments=1, connections=1)
    (key,) = written.credentials
    store = PgRotationStore(pool)
    (stale,) = await store.encrypted_rows(CONNECTIONS, after=CONNECTIONS.start, limit=10)
    newer = ROTATED.encrypt_json({"api_key": "newer"}, aad=connection_aad(*key))
    assert await store.swap_ciphertexts(CONNECTIONS, stale, [newer]) is True
    late = ROTATED.reencrypt(stale.ciphertexts[0], aad=connection_aad(*key))

    assert await store.swap_ciphertexts(CONNECTIONS, stale, [late]) is False
    assert await credentials_of(pool, key) == newer


async def test_undecryptable_connection_is_reported_and_left_as_it_is(pool) -> None:
    written = await write_rows(pool, OLD, environments=1, connections=2)
    env_id = next(iter(written.credentials))[0]
    stranger = KeyRing.from_spec(f"1:{generate_key()}")  # a version 1 nobody listed
    bad_key = (env_id, "api-key", unique("conn"))
    await add_connection(PgStore(pool), stranger, bad_key, {"api_key": "lost"})
    bad_blob = await credentials_of(pool, bad_key)

    with capture_logs() as logs:
        result = await reencrypt(PgRotationStore(pool), ROTATED)

    assert counts(result)["connections"] == tally(rewritten=2, unreadable=1)
    assert await credentials_of(pool, bad_key) == bad_blob
    assert [(e["log_level"], e["event"], e["table"], e["row"]) for e in logs] == [(
        "warning", "vault.ciphertext_unreadable", "connections",
        {"environment_id": env_id, "integration_id": "api-key", "connection_id": bad_key[2]},
    )]
    assert bad_blob.hex() not in str(logs) and repr(bad_blob) not in str(logs)


async def test_environment_with_an_unreadable_secret_key_still_moves_its_webhook_secret(
    pool,
) -> None:
    """Webhooks need the webhook secret after key 1 is gone, whatever became of the other."""
    written = await write_rows(pool, OLD, environments=1, connections=0)
    (name,) = written.environments
    env_id = await pool.fetchval("SELECT id FROM vault.environments WHERE name = $1", name)
    damaged = KeyRing.from_spec(f"1:{generate_key()}").encrypt_json(
        "sk_x", aad=domain.secret_key_aad(env_id))
    await pool.execute(
        "UPDATE vault.environments SET secret_key_encrypted = $2 WHERE id = $1", env_id, damaged)
    webhook_secret = OLD.decrypt_json(
        await pool.fetchval("SELECT webhook_secret_encrypted FROM vault.environments"
                            " WHERE id = $1", env_id),
        aad=domain.webhook_secret_aad(env_id))

    result = await reencrypt(PgRotationStore(pool), ROTATED)

    assert counts(result)["environments"] == tally(unreadable=1)
    row = await pool.fetchrow("SELECT * FROM vault.environments WHERE id = $1", env_id)
    assert bytes(row["secret_key_encrypted"]) == damaged
    assert NEW_ONLY.decrypt_json(row["webhook_secret_encrypted"],
                                 aad=domain.webhook_secret_aad(env_id)) == webhook_secret
