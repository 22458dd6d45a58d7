"""The vault's storage on real PostgreSQL: environments, integrations, connections, outbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from terapi_common.crypto import sha256_hex
from terapi_common.errors import InvalidInputError, NotFoundError
from terapi_common.events import ConnectionDeleted, event_from_wire
from terapi_vault.admin import environment_keys
from terapi_vault.domain import Integration, stored_events
from terapi_vault.handlers import create_environment
from terapi_vault.inputs import ConnectionQuery
from terapi_vault.store import NewConnection, PgStore, StoredEvents
from tests.conftest import unique
from tests.integration.vault.conftest import Env

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def integration(env: Env, integration_id: str) -> Integration:
    return Integration(
        environment_id=env.id, integration_id=integration_id, provider="api-key",
        auth_mode="API_KEY", client_id=None, client_secret_encrypted=None, scopes=[],
        provider_config={}, created_at=NOW, updated_at=NOW,
    )


def connection(env: Env, integration_id: str, connection_id: str, *, at: datetime = NOW,
               end_user: dict | None = None) -> NewConnection:
    return NewConnection(
        environment_id=env.id, integration_id=integration_id, connection_id=connection_id,
        provider="api-key", auth_mode="API_KEY", credentials_encrypted=b"\x01ciphertext",
        connection_config={"a": "1"}, end_user=end_user, expires_at=None, now=at,
    )


def deleted(env: Env):
    def build(row) -> ConnectionDeleted:
        return ConnectionDeleted(
            environment_id=env.id, environment=env.name, connection_id=row["connection_id"],
            integration_id=row["integration_id"], provider=row["provider"],
            auth_mode=row["auth_mode"],
        )
    return build


def stored(env: Env, connection_id: str = "x", end_user: dict | None = None) -> StoredEvents:
    """The candidate events of one connection write."""
    created, updated = stored_events(
        environment_name=env.name, end_user=end_user, environment_id=env.id,
        connection_id=connection_id, integration_id="int-1", provider="api-key",
        auth_mode="API_KEY",
    )
    return StoredEvents(created, updated)


async def outbox_types(pool, env: Env) -> list[str]:
    rows = await pool.fetch(
        "SELECT body FROM vault.outbox WHERE environment_id = $1 ORDER BY id", env.id
    )
    return [r["body"]["type"] for r in rows]


@pytest.fixture
async def store(pool, env: Env) -> PgStore:
    return PgStore(pool)


async def test_replicas_racing_to_create_an_environment_create_it_once(
    pool, key_ring, store: PgStore
) -> None:
    """Replicas starting together each try to create the default environments."""
    name = unique("env")
    created = await asyncio.gather(*(create_environment(store, key_ring, name)
                                     for _ in range(3)))
    assert sorted(created) == [False, False, True]
    rows = await pool.fetch("SELECT name FROM vault.environments WHERE name = $1", name)
    assert len(rows) == 1


async def test_environment_keys_show_a_secret_key_that_finds_the_environment(
    pool, key_ring, store: PgStore, env: Env
) -> None:
    keys = await environment_keys(pool, key_ring, env.name)
    assert keys["environment"] == env.name
    assert keys["public_key"].startswith("pk_") and keys["secret_key"].startswith("sk_")
    assert keys["webhook_secret"].startswith("whsec_")
    found = await store.environment_by_digest(sha256_hex(keys["secret_key"]))
    assert found is not None and found.name == env.name


async def test_keys_of_unknown_environment_are_not_found(pool, key_ring, client) -> None:
    with pytest.raises(NotFoundError) as caught:
        await environment_keys(pool, key_ring, unique("missing"))
    assert caught.value.code == "environment_not_found"


async def test_environment_secrets_are_not_stored_in_plaintext(pool, env: Env) -> None:
    row = await pool.fetchrow("SELECT * FROM vault.environments WHERE id = $1", env.id)
    text = str(dict(row)).encode() + bytes(row["secret_key_encrypted"])
    assert env.secret_key.encode() not in text
    assert env.webhook_secret.encode() not in bytes(row["webhook_secret_encrypted"])


async def test_second_integration_with_the_same_id_is_not_inserted(
    store: PgStore, env: Env
) -> None:
    assert await store.insert_integration(integration(env, "int-1")) is True
    assert await store.insert_integration(integration(env, "int-1")) is False


async def test_upsert_reports_creation_then_override(
    store: PgStore, env: Env, pool
) -> None:
    await store.insert_integration(integration(env, "int-1"))
    assert await store.upsert_connection(connection(env, "int-1", "c"), events=stored(env)) is True
    assert await store.upsert_connection(connection(env, "int-1", "c"), events=stored(env)
                                         ) is False
    assert await outbox_types(pool, env) == ["connection.created", "connection.updated"]


def test_candidate_events_must_share_their_id(env: Env) -> None:
    with pytest.raises(ValueError, match="event id"):
        StoredEvents(stored(env).created, stored(env).updated)


async def test_override_without_end_user_reports_the_end_user_it_kept(
    store: PgStore, env: Env, pool
) -> None:
    await store.insert_integration(integration(env, "int-1"))
    first = connection(env, "int-1", "c", end_user={"id": "u", "email": "u@example.com"})
    await store.upsert_connection(first, events=stored(env, "c", first.end_user))
    again = NewConnection(**{**first.__dict__, "end_user": None})
    await store.upsert_connection(again, events=stored(env, "c"))
    bodies = [r["body"] for r in await pool.fetch(
        "SELECT body FROM vault.outbox WHERE environment_id = $1 ORDER BY id", env.id)]
    assert [b["data"]["end_user"] for b in bodies] == [first.end_user, first.end_user]
    assert event_from_wire(bodies[1]).end_user.email == "u@example.com"


async def test_override_keeps_end_user_and_merges_connection_config(
    store: PgStore, env: Env
) -> None:
    await store.insert_integration(integration(env, "int-1"))
    first = connection(env, "int-1", "c", end_user={"id": "u"})
    await store.upsert_connection(first, events=stored(env))
    second = NewConnection(**{**first.__dict__, "end_user": None,
                              "connection_config": {"b": "2"}})
    await store.upsert_connection(second, events=stored(env))
    [row] = await store.read_connection(env.id, "c", None)
    assert row["end_user"] == {"id": "u"}
    assert row["connection_config"] == {"a": "1", "b": "2"}


async def test_upsert_for_a_missing_integration_stores_nothing(
    store: PgStore, env: Env, pool
) -> None:
    result = await store.upsert_connection(connection(env, "missing", "c"), events=stored(env))
    assert result is None
    assert await outbox_types(pool, env) == []


async def test_deleting_an_integration_queues_one_event_per_connection(
    store: PgStore, env: Env, pool
) -> None:
    await store.insert_integration(integration(env, "int-1"))
    for connection_id in ("c1", "c2"):
        await store.upsert_connection(
            connection(env, "int-1", connection_id), events=stored(env),
        )
    await pool.execute("DELETE FROM vault.outbox WHERE environment_id = $1", env.id)
    events = deleted(env)
    assert await store.delete_integration(
        env.id, "int-1", events=lambda rows: [events(r) for r in rows]
    ) is True
    assert await outbox_types(pool, env) == ["connection.deleted", "connection.deleted"]
    assert await store.read_connection(env.id, "c1", None) == []
    assert await store.get_integration(env.id, "int-1") is None


async def test_failed_delete_of_an_ambiguous_connection_queues_nothing(
    store: PgStore, env: Env, pool
) -> None:
    for integration_id in ("int-1", "int-2"):
        await store.insert_integration(integration(env, integration_id))
        await store.upsert_connection(
            connection(env, integration_id, "shared"), events=stored(env),
        )
    await pool.execute("DELETE FROM vault.outbox WHERE environment_id = $1", env.id)
    with pytest.raises(InvalidInputError):
        await store.delete_connection(env.id, "shared", None, event=deleted(env))
    assert await outbox_types(pool, env) == []
    assert len(await store.read_connection(env.id, "shared", None)) == 2


async def test_listing_pages_by_creation_time_newest_first(store: PgStore, env: Env) -> None:
    await store.insert_integration(integration(env, "int-1"))
    for minutes, connection_id in enumerate(("old", "mid", "new")):
        at = NOW + timedelta(minutes=minutes)
        await store.upsert_connection(
            connection(env, "int-1", connection_id, at=at), events=stored(env),
        )
    rows = await store.list_connections(env.id, ConnectionQuery(limit=2))
    assert [r["connection_id"] for r in rows] == ["new", "mid", "old"]  # one extra: more exist
    from terapi_vault.domain import encode_cursor

    after = await store.list_connections(
        env.id, ConnectionQuery(limit=2, cursor=encode_cursor(rows[1]))
    )
    assert [r["connection_id"] for r in after] == ["old"]


async def test_keys_under_another_key_ring_are_unreadable(pool, env: Env) -> None:
    from terapi_common.crypto import KeyRing, generate_key
    from terapi_common.errors import ConflictError

    with pytest.raises(ConflictError) as caught:
        await environment_keys(pool, KeyRing.from_spec(generate_key()), env.name)
    assert caught.value.code == "credentials_unreadable"
