"""PostgreSQL access shared by services: the pool, migrations, outbox and dedupe.

Each service owns one schema (`vault`, `gateway`, ...) and keeps numbered `.sql`
migrations in its package; `migrate` applies the missing ones in order, under an
advisory lock so replicas starting together do not race.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import structlog

from terapi_common import maintenance, tracing
from terapi_common.events import Event, event_from_wire

log = structlog.get_logger("terapi.db")

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_MIGRATION_FILE = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads,
            schema="pg_catalog",
        )


async def _reset_connection(conn: asyncpg.Connection) -> None:
    # asyncpg's default reset (RESET ALL; CLOSE ALL; UNLISTEN *; ...) is a round trip on
    # every release. Terapi never leaves session state behind (no SET, LISTEN or cursors
    # outside transactions), so only an unfinished transaction needs undoing.
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose JSON columns read and write Python values."""
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, command_timeout=30,
        reset=_reset_connection,
    )


def check_schema(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"bad schema name {schema!r}")
    return schema


def _common_tables(schema: str) -> str:
    return f"""
    CREATE SCHEMA IF NOT EXISTS {schema};
    CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS {schema}.outbox (
        id bigserial PRIMARY KEY,
        environment_id integer NOT NULL,
        event_id uuid NOT NULL UNIQUE,
        body jsonb NOT NULL,
        headers jsonb NOT NULL DEFAULT '{{}}',
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS {schema}.processed_events (
        consumer text NOT NULL,
        event_id uuid NOT NULL,
        environment_id integer NOT NULL,
        processed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, event_id)
    );
    CREATE INDEX IF NOT EXISTS processed_events_by_age ON {schema}.processed_events
        (processed_at);
    """


def migration_files(folder: Path) -> list[tuple[int, str, Path]]:
    """The numbered migrations in a folder, in order."""
    found = []
    for path in folder.glob("*.sql"):
        match = _MIGRATION_FILE.match(path.name)
        if match is None:
            raise ValueError(f"migration file name {path.name!r} is not NNN_name.sql")
        found.append((int(match.group(1)), path.stem, path))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations share a number in {folder}")
    return found


async def migrate(conn: asyncpg.Connection, schema: str, folder: Path) -> list[str]:
    """Apply the service's missing migrations; returns the names applied."""
    check_schema(schema)
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
        await conn.execute(_common_tables(schema))
        rows = await conn.fetch(f"SELECT version FROM {schema}.schema_migrations")
        done = {r["version"] for r in rows}
        for version, name, path in migration_files(folder):
            if version in done:
                continue
            await conn.execute(path.read_text())
            await conn.execute(
                f"INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)",
                version, name,
            )
            applied_now.append(name)
    if applied_now:
        log.info("db.migrated", schema=schema, applied=applied_now)
    return applied_now


async def claim_event(conn: asyncpg.Connection, schema: str, consumer: str, event: Event) -> bool:
    """Record that `consumer` handled `event`; False if it already had (skip and ack).

    Call inside the handler's transaction so the record and the effect commit together.
    """
    status = await conn.execute(
        f"INSERT INTO {schema}.processed_events (consumer, event_id, environment_id) "
        "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        consumer, event.event_id, event.environment_id,
    )
    return status.endswith(" 1")


async def prune_processed_events(pool: asyncpg.Pool, schema: str, *, before: datetime,
                                 batch: int = maintenance.PRUNE_BATCH) -> int:
    """Forget which events were handled before `before`. The record only has to outlive a
    redelivery (a consumer that died before its ack), which comes within minutes."""
    return await maintenance.delete_in_batches(
        pool, f"{check_schema(schema)}.processed_events", "processed_at < $1", before,
        batch=batch)


async def add_to_outbox(conn: asyncpg.Connection, schema: str, events: Iterable[Event]) -> None:
    """Queue events in the caller's transaction; the relay publishes them after commit."""
    headers = tracing.inject_headers()
    await conn.executemany(
        f"INSERT INTO {schema}.outbox (environment_id, event_id, body, headers) "
        "VALUES ($1, $2, $3, $4)",
        [(e.environment_id, e.event_id, e.to_wire(), headers) for e in events],
    )


RELAY_BATCH = 200
# A kick comes from a request that has not answered yet. Waiting this long before reading
# the outbox lets its answer leave first (the relay's query and publishes would otherwise
# compete with it for the CPU) and gathers requests that commit together into one pass.
RELAY_LINGER_SECONDS = 0.002


class OutboxRelay:
    """Publishes committed outbox rows with confirms, then deletes them.

    `kick()` after a commit publishes within `linger` seconds; a periodic sweep catches
    rows left by a crash or by another replica. Rows are claimed with SKIP LOCKED so
    replicas share.
    """

    def __init__(self, pool: asyncpg.Pool, schema: str, bus: Any, *, interval: float = 1.0,
                 linger: float = RELAY_LINGER_SECONDS):
        self._pool = pool
        self._schema = check_schema(schema)
        self._bus = bus
        self._interval = interval
        self._linger = linger
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox relay {self._schema}")

    async def stop(self) -> None:
        """Let the batch in hand finish (no half-published batch), then publish the rest."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        while await self.drain() == RELAY_BATCH:  # every pending batch, not just the first
            pass

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), self._interval)
                if not self._stopping:
                    await asyncio.sleep(self._linger)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                # A short batch means nothing was left when it was read; a commit since
                # then has kicked the relay again, so there is no need for an empty pass.
                while await self.drain(RELAY_BATCH) == RELAY_BATCH:
                    pass
            except Exception:  # noqa: BLE001  # the sweep must outlive a broker or DB hiccup
                log.exception("outbox.relay_failed", schema=self._schema)

    async def drain(self, batch: int = RELAY_BATCH) -> int:
        """Publish up to `batch` pending events; returns how many went out."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT id, body, headers FROM {self._schema}.outbox "
                "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                batch,
            )
            if not rows:
                return 0
            await asyncio.gather(*(self._publish(r["body"], r["headers"]) for r in rows))
            await conn.execute(
                f"DELETE FROM {self._schema}.outbox WHERE id = ANY($1::bigint[])",
                [r["id"] for r in rows],
            )
        return len(rows)

    async def _publish(self, body: dict[str, Any], headers: dict[str, Any]) -> None:
        with tracing.attached(headers):
            await self._bus.publish(event_from_wire(body))
