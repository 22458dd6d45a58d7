"""The vault's tables: environments, integrations and connections (all SQL lives here)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from terapi_common import tracing
from terapi_common.bus import check_deadline
from terapi_common.db import add_to_outbox
from terapi_common.events import Event
from terapi_vault import domain, errors
from terapi_vault.cache import ConnectionCache
from terapi_vault.domain import Environment, Integration
from terapi_vault.inputs import ConnectionQuery

SCHEMA = "vault"
Row = Mapping[str, Any]

_ENVIRONMENT = (
    "id, name, public_key, callback_url, webhook_url, webhook_secondary_url, "
    "send_new_connection_webhooks, send_auth_failure_webhooks, require_connect_sessions"
)
_INTEGRATION = (
    "environment_id, integration_id, provider, auth_mode, client_id, client_secret_encrypted, "
    "scopes, provider_config, created_at, updated_at"
)
_SUMMARY = (
    "integration_id, connection_id, provider, auth_mode, end_user, created_at, updated_at, "
    "refresh_error"
)
_FULL = (
    "connection_id, integration_id, provider, auth_mode, credentials_encrypted, "
    "connection_config, end_user, expires_at, version"
)
_DETAIL = (
    "integration_id, provider, credentials_encrypted, connection_config, end_user, "
    "created_at, updated_at, refresh_error"
)
READ_CONNECTION = (
    f"SELECT {_DETAIL} FROM vault.connections "  # noqa: S608  # fixed text
    "WHERE environment_id = $1 AND connection_id = $2 LIMIT 2"
)
READ_CONNECTION_OF_INTEGRATION = (
    f"SELECT {_DETAIL} FROM vault.connections "  # noqa: S608  # fixed text
    "WHERE environment_id = $1 AND connection_id = $2 AND integration_id = $3"
)
# One statement, so one round trip, writes the row and queues its event. Which event is
# known only once the row is written (created or overridden), so both candidates come in and
# the statement keeps one, with the end user the row now holds (an override may keep the
# earlier one).
_UPSERT_CONNECTION = """
WITH stored AS (
    INSERT INTO vault.connections AS c (environment_id, integration_id, connection_id,
        provider, auth_mode, credentials_encrypted, connection_config, end_user, expires_at,
        created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
    ON CONFLICT (environment_id, integration_id, connection_id) DO UPDATE SET
        provider = EXCLUDED.provider,
        auth_mode = EXCLUDED.auth_mode,
        credentials_encrypted = EXCLUDED.credentials_encrypted,
        connection_config = c.connection_config || EXCLUDED.connection_config,
        end_user = COALESCE(EXCLUDED.end_user, c.end_user),
        expires_at = EXCLUDED.expires_at,
        updated_at = EXCLUDED.updated_at,
        version = c.version + 1,
        refresh_error = NULL
    -- A connect session acts for its end user only: it may not take over a connection
    -- another end user authorized (a public-key caller names no end user).
    WHERE c.end_user IS NULL OR EXCLUDED.end_user IS NULL
        OR c.end_user ->> 'id' = EXCLUDED.end_user ->> 'id'
    RETURNING (xmax = 0) AS inserted, end_user
), queued AS (
    INSERT INTO vault.outbox (environment_id, event_id, body, headers)
    SELECT $1, $11, jsonb_set(CASE WHEN inserted THEN $12::jsonb ELSE $13::jsonb END,
                              '{data,end_user}', COALESCE(end_user, 'null'::jsonb)), $14
    FROM stored
)
SELECT inserted FROM stored
"""
_REPLACE_CREDENTIALS = """
UPDATE vault.connections SET credentials_encrypted = $5, expires_at = $6, updated_at = $7,
    version = version + 1, refresh_error = NULL
WHERE environment_id = $1 AND integration_id = $2 AND connection_id = $3 AND version = $4
RETURNING version, connection_id, integration_id, provider, auth_mode, end_user
"""
_EDITABLE_ENVIRONMENT = frozenset({
    "webhook_url", "webhook_secondary_url", "callback_url", "send_new_connection_webhooks",
    "send_auth_failure_webhooks", "require_connect_sessions",
})


@dataclass(frozen=True)
class NewEnvironment:
    """An environment about to be created, its secrets already encrypted."""

    id: int
    name: str
    public_key: str
    secret_key_digest: str
    secret_key_encrypted: bytes
    webhook_secret_encrypted: bytes


@dataclass(frozen=True)
class EnvironmentSecrets:
    secret_key_encrypted: bytes
    webhook_secret_encrypted: bytes


@dataclass(frozen=True)
class NewConnection:
    """Credentials to store, already encrypted for their row."""

    environment_id: int
    integration_id: str
    connection_id: str
    provider: str
    auth_mode: str
    credentials_encrypted: bytes
    connection_config: dict[str, Any]
    end_user: dict[str, Any] | None
    expires_at: datetime | None
    now: datetime


@dataclass(frozen=True)
class StoredEvents:
    """The two events a connection write may queue; they share one event id."""

    created: Event
    updated: Event

    def __post_init__(self) -> None:
        if (self.created.event_id, self.created.environment_id) != (
                self.updated.event_id, self.updated.environment_id):
            raise ValueError("both candidate events must share the event id and environment")


@dataclass(frozen=True)
class CredentialsChange:
    """New credentials for a connection, applied only if it is still at `expected_version`."""

    environment_id: int
    integration_id: str
    connection_id: str
    expected_version: int
    credentials_encrypted: bytes
    expires_at: datetime | None
    now: datetime


class Store(Protocol):
    """What the vault's handlers need from storage."""

    async def next_environment_id(self) -> int: ...
    async def insert_environment(self, environment: NewEnvironment) -> bool: ...
    async def environment_by_id(self, environment_id: int) -> Environment | None: ...
    async def environment_by_name(self, name: str) -> Environment | None: ...
    async def environment_by_digest(self, digest: str) -> Environment | None: ...
    async def environment_by_public_key(self, public_key: str) -> Environment | None: ...
    async def environment_secrets(self, environment_id: int) -> EnvironmentSecrets | None: ...
    async def update_environment(
        self, environment_id: int, changes: Mapping[str, Any], *, now: datetime, event: Event
    ) -> Environment | None: ...
    async def insert_integration(self, integration: Integration) -> bool: ...
    async def get_integration(
        self, environment_id: int, integration_id: str
    ) -> Integration | None: ...
    async def list_integrations(self, environment_id: int) -> list[Integration]: ...
    async def update_integration(self, integration: Integration, *, event: Event,
                                 read_at: datetime) -> bool: ...
    async def delete_integration(
        self, environment_id: int, integration_id: str,
        *, events: Callable[[Sequence[Row]], list[Event]],
    ) -> bool: ...
    async def read_connection(
        self, environment_id: int, connection_id: str, integration_id: str | None
    ) -> Sequence[Row]: ...
    async def list_connections(self, environment_id: int, query: ConnectionQuery) -> list[Row]: ...
    async def get_connection(
        self, environment_id: int, integration_id: str, connection_id: str
    ) -> Row | None: ...
    async def upsert_connection(
        self, connection: NewConnection, *, events: StoredEvents
    ) -> bool | None: ...
    async def replace_credentials(
        self, change: CredentialsChange, *, event: Callable[[Row], Event]
    ) -> int | None: ...
    async def record_refresh_error(
        self, environment_id: int, integration_id: str, connection_id: str, *, version: int,
        error: dict[str, Any],
    ) -> bool: ...
    async def delete_connection(
        self, environment_id: int, connection_id: str, integration_id: str | None,
        *, event: Callable[[Row], Event],
    ) -> Row: ...


def _values(record: Any) -> tuple[Any, ...]:
    """A dataclass's fields in declaration order, as statement arguments. Unlike
    `dataclasses.astuple` it copies nothing (asyncpg only reads them)."""
    return tuple(getattr(record, field.name) for field in fields(record))


class Statements(Protocol):
    """Where the hot single statements run: connections pinned for them
    (`lane.StatementLane`), or the pool (`PoolStatements`)."""

    async def fetch(self, query: str, *args: Any,
                    before: Callable[[], None] | None = None) -> list[asyncpg.Record]: ...


class PoolStatements:
    """Each statement on a connection acquired from the pool for it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def fetch(self, query: str, *args: Any,
                    before: Callable[[], None] | None = None) -> list[asyncpg.Record]:
        async with self._pool.acquire() as conn:
            if before is not None:
                before()
            return await conn.fetch(query, *args)


class PgStore:
    """The store on PostgreSQL (asyncpg caches each statement per connection)."""

    def __init__(self, pool: asyncpg.Pool, *, reader: Statements | None = None,
                 writer: Statements | None = None,
                 cache: ConnectionCache | None = None) -> None:
        self._pool = pool
        self._reader: Statements = reader or PoolStatements(pool)
        self._writer: Statements = writer or PoolStatements(pool)
        self._cache = cache if cache is not None else ConnectionCache(ttl=0)

    # -- environments

    async def next_environment_id(self) -> int:
        return await self._pool.fetchval("SELECT nextval('vault.environments_id_seq')")

    async def insert_environment(self, environment: NewEnvironment) -> bool:
        """Create it unless an environment of that name exists (safe when racing)."""
        inserted = await self._pool.fetchval(
            "INSERT INTO vault.environments (id, name, public_key, secret_key_digest, "
            "secret_key_encrypted, webhook_secret_encrypted) VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (name) DO NOTHING RETURNING id",
            *_values(environment),
        )
        return inserted is not None

    async def environment_by_id(self, environment_id: int) -> Environment | None:
        return await self._environment("id = $1", environment_id)

    async def environment_by_name(self, name: str) -> Environment | None:
        return await self._environment("name = $1", name)

    async def environment_by_digest(self, digest: str) -> Environment | None:
        return await self._environment("secret_key_digest = $1", digest)

    async def environment_by_public_key(self, public_key: str) -> Environment | None:
        return await self._environment("public_key = $1", public_key)

    async def _environment(self, where: str, value: Any) -> Environment | None:
        row = await self._pool.fetchrow(
            f"SELECT {_ENVIRONMENT} FROM vault.environments WHERE {where}", value  # noqa: S608  # fixed text
        )
        return Environment(**dict(row)) if row else None

    async def environment_secrets(self, environment_id: int) -> EnvironmentSecrets | None:
        row = await self._pool.fetchrow(
            "SELECT secret_key_encrypted, webhook_secret_encrypted FROM vault.environments "
            "WHERE id = $1", environment_id,
        )
        return EnvironmentSecrets(**dict(row)) if row else None

    async def update_environment(
        self, environment_id: int, changes: Mapping[str, Any], *, now: datetime, event: Event
    ) -> Environment | None:
        """Apply `changes` and queue `event` (caches of the settings elsewhere drop them)."""
        names = [n for n in changes if n in _EDITABLE_ENVIRONMENT]
        sets = "".join(f"{name} = ${i}, " for i, name in enumerate(names, start=3))
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"UPDATE vault.environments SET {sets}updated_at = $2 WHERE id = $1 "  # noqa: S608  # column names come from a fixed set
                f"RETURNING {_ENVIRONMENT}",
                environment_id, now, *(changes[n] for n in names),
            )
            if row is None:
                return None
            await add_to_outbox(conn, SCHEMA, [event])
        return Environment(**dict(row))

    # -- integrations

    async def insert_integration(self, integration: Integration) -> bool:
        """False when the environment has an integration with that id already."""
        inserted = await self._pool.fetchval(
            f"INSERT INTO vault.integrations ({_INTEGRATION}) "  # noqa: S608  # fixed text
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING "
            "RETURNING 1",
            *_values(integration),
        )
        return inserted is not None

    async def get_integration(self, environment_id: int, integration_id: str) -> Integration | None:
        row = await self._pool.fetchrow(
            f"SELECT {_INTEGRATION} FROM vault.integrations "  # noqa: S608  # fixed text
            "WHERE environment_id = $1 AND integration_id = $2",
            environment_id, integration_id,
        )
        return Integration(**dict(row)) if row else None

    async def list_integrations(self, environment_id: int) -> list[Integration]:
        rows = await self._pool.fetch(
            f"SELECT {_INTEGRATION} FROM vault.integrations "  # noqa: S608  # fixed text
            "WHERE environment_id = $1 ORDER BY created_at, integration_id",
            environment_id,
        )
        return [Integration(**dict(r)) for r in rows]

    async def update_integration(self, integration: Integration, *, event: Event,
                                 read_at: datetime) -> bool:
        """Save new settings and queue `event` (caches elsewhere drop the old ones), if the
        row is still as read (`updated_at` = `read_at`); False if it is gone or changed."""
        async with self._pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                "UPDATE vault.integrations SET client_id = $3, client_secret_encrypted = $4, "
                "scopes = $5, provider_config = $6, updated_at = $7 "
                "WHERE environment_id = $1 AND integration_id = $2 AND updated_at = $8",
                integration.environment_id, integration.integration_id, integration.client_id,
                integration.client_secret_encrypted, integration.scopes,
                integration.provider_config, integration.updated_at, read_at,
            )
            if status != "UPDATE 1":
                return False
            await add_to_outbox(conn, SCHEMA, [event])
        return True

    async def delete_integration(
        self, environment_id: int, integration_id: str,
        *, events: Callable[[Sequence[Row]], list[Event]],
    ) -> bool:
        """Delete it and its connections, queueing `events(deleted connections)`."""
        async with self._pool.acquire() as conn, conn.transaction():
            # Locking the row first makes a connection stored meanwhile wait, then fail.
            found = await conn.fetchval(
                "SELECT 1 FROM vault.integrations WHERE environment_id = $1 "
                "AND integration_id = $2 FOR UPDATE",
                environment_id, integration_id,
            )
            if found is None:
                return False
            rows = await conn.fetch(
                f"DELETE FROM vault.connections WHERE environment_id = $1 "  # noqa: S608  # fixed text
                f"AND integration_id = $2 RETURNING {_SUMMARY}",
                environment_id, integration_id,
            )
            await conn.execute(
                "DELETE FROM vault.integrations WHERE environment_id = $1 "
                "AND integration_id = $2",
                environment_id, integration_id,
            )
            # Always: the integration's own change event goes out even with no connections.
            await add_to_outbox(conn, SCHEMA, events(rows))
        self._cache.invalidate_environment(environment_id)
        return True

    # -- connections

    async def read_connection(
        self, environment_id: int, connection_id: str, integration_id: str | None
    ) -> Sequence[Row]:
        """At most two rows: enough to tell one match from an ambiguous id."""
        key = (environment_id, connection_id, integration_id)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        read_at = self._cache.epoch
        if integration_id is None:
            rows = await self._reader.fetch(READ_CONNECTION, environment_id, connection_id)
        else:
            rows = await self._reader.fetch(
                READ_CONNECTION_OF_INTEGRATION, environment_id, connection_id, integration_id
            )
        self._cache.put(key, rows, read_at=read_at)
        return rows

    def forget_connection(self, environment_id: int, connection_id: str) -> None:
        """Drop cached reads of a connection another process changed."""
        self._cache.invalidate(environment_id, connection_id)

    async def list_connections(self, environment_id: int, query: ConnectionQuery) -> list[Row]:
        """Newest first; one more row than asked for tells whether a next page exists."""
        where, args = ["environment_id = $1"], [environment_id]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if query.integration_id is not None:
            where.append(f"integration_id = {arg(query.integration_id)}")
        if query.end_user_id is not None:
            where.append(f"end_user ->> 'id' = {arg(query.end_user_id)}")
        if query.search:
            pattern = arg(domain.like_pattern(query.search))
            where.append(
                f"(connection_id ILIKE {pattern} OR end_user ->> 'id' ILIKE {pattern} "
                f"OR end_user ->> 'email' ILIKE {pattern} "
                f"OR end_user ->> 'display_name' ILIKE {pattern})"
            )
        if query.cursor is not None:
            after = domain.decode_cursor(query.cursor)
            where.append(
                f"(created_at, integration_id, connection_id) < ({arg(after[0])}, "
                f"{arg(after[1])}, {arg(after[2])})"
            )
        return await self._pool.fetch(
            f"SELECT {_SUMMARY} FROM vault.connections WHERE {' AND '.join(where)} "  # noqa: S608  # only placeholders vary
            "ORDER BY created_at DESC, integration_id DESC, connection_id DESC "
            f"LIMIT {arg(query.limit + 1)}",
            *args,
        )

    async def get_connection(
        self, environment_id: int, integration_id: str, connection_id: str
    ) -> Row | None:
        return await self._pool.fetchrow(
            f"SELECT {_FULL} FROM vault.connections WHERE environment_id = $1 "  # noqa: S608  # fixed text
            "AND integration_id = $2 AND connection_id = $3",
            environment_id, integration_id, connection_id,
        )

    async def replace_credentials(
        self, change: CredentialsChange, *, event: Callable[[Row], Event]
    ) -> int | None:
        """The new version, or None when the connection is gone or changed meanwhile."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(_REPLACE_CREDENTIALS, *_values(change))
            if row is None:
                return None
            await add_to_outbox(conn, SCHEMA, [event(row)])
        self._cache.invalidate(change.environment_id, change.connection_id)
        return row["version"]

    async def record_refresh_error(
        self, environment_id: int, integration_id: str, connection_id: str, *, version: int,
        error: dict[str, Any],
    ) -> bool:
        """Mark the connection's credentials of `version` as given up on by the refresher;
        False when they have been replaced since (the mark would describe old ones)."""
        status = await self._pool.execute(
            "UPDATE vault.connections SET refresh_error = $5 WHERE environment_id = $1 "
            "AND integration_id = $2 AND connection_id = $3 AND version = $4",
            environment_id, integration_id, connection_id, version, error,
        )
        self._cache.invalidate(environment_id, connection_id)
        return status == "UPDATE 1"

    async def upsert_connection(
        self, connection: NewConnection, *, events: StoredEvents
    ) -> bool | None:
        """Create or override, queueing `events.created` or `events.updated` with it; True
        when created, None when the integration does not exist. Overriding a connection of
        another end user is a 403 and changes nothing."""
        args = (*_values(connection), events.created.event_id, events.created.to_wire(),
                events.updated.to_wire(), tracing.inject_headers())
        try:
            # The deadline is checked after any wait for a connection, right before the write.
            rows = await self._writer.fetch(_UPSERT_CONNECTION, *args, before=check_deadline)
        except asyncpg.ForeignKeyViolationError:
            return None
        row = rows[0] if rows else None
        if row is None:  # the override's condition refused: no write, no event
            raise errors.connection_of_another_end_user(connection.connection_id)
        self._cache.invalidate(connection.environment_id, connection.connection_id)
        return row["inserted"]

    async def delete_connection(
        self, environment_id: int, connection_id: str, integration_id: str | None,
        *, event: Callable[[Row], Event],
    ) -> Row:
        """Delete the connection a request names, queueing `event(row)`; the row deleted."""
        match = "AND integration_id = $3" if integration_id is not None else ""
        args: list[Any] = [environment_id, connection_id]
        if integration_id is not None:
            args.append(integration_id)
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT {_FULL} FROM vault.connections WHERE environment_id = $1 "  # noqa: S608  # fixed text
                f"AND connection_id = $2 {match} LIMIT 2 FOR UPDATE",
                *args,
            )
            row = domain.pick_connection(rows, connection_id, integration_id)
            await conn.execute(
                "DELETE FROM vault.connections WHERE environment_id = $1 "
                "AND integration_id = $2 AND connection_id = $3",
                environment_id, row["integration_id"], connection_id,
            )
            await add_to_outbox(conn, SCHEMA, [event(row)])
        self._cache.invalidate(environment_id, connection_id)
        return row
