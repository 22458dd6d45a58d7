"""Migrations, the outbox relay and event dedupe on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from terapi_common import db
from terapi_common.events import ConnectionDeleted
from terapi_common.memory_bus import MemoryBus
from tests.conftest import unique

pytestmark = pytest.mark.integration


def _schema() -> str:
    return unique("t").replace("-", "_")


def _deleted(connection_id: str = "c1") -> ConnectionDeleted:
    return ConnectionDeleted(environment_id=1, connection_id=connection_id, integration_id="i",
                             provider="p", auth_mode="API_KEY", environment="dev")


def _write_migrations(folder: Path, schema: str, count: int) -> None:
    for number in range(1, count + 1):
        (folder / f"{number:03d}_step.sql").write_text(
            f"CREATE TABLE {schema}.t{number} (id integer);"
        )


async def test_migrations_apply_once_in_order(pool, tmp_path: Path) -> None:
    schema = _schema()
    _write_migrations(tmp_path, schema, 2)
    async with pool.acquire() as conn:
        assert await db.migrate(conn, schema, tmp_path) == ["001_step", "002_step"]
        assert await db.migrate(conn, schema, tmp_path) == []
        _write_migrations(tmp_path, schema, 3)
        assert await db.migrate(conn, schema, tmp_path) == ["003_step"]


async def test_concurrent_migrations_do_not_race(pool, tmp_path: Path) -> None:
    schema = _schema()
    _write_migrations(tmp_path, schema, 3)

    async def run() -> list[str]:
        async with pool.acquire() as conn:
            return await db.migrate(conn, schema, tmp_path)

    first, second = await asyncio.gather(run(), run())
    assert sorted([first, second], key=len) == [[], ["001_step", "002_step", "003_step"]]


async def test_failed_migration_leaves_nothing_applied(pool, tmp_path: Path) -> None:
    schema = _schema()
    (tmp_path / "001_ok.sql").write_text(f"CREATE TABLE {schema}.ok (id integer);")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE nonsense syntax;")
    async with pool.acquire() as conn:
        with pytest.raises(Exception):  # noqa: B017  # any SQL error will do
            await db.migrate(conn, schema, tmp_path)
        exists = await conn.fetchval("SELECT to_regclass($1)", f"{schema}.ok")
    assert exists is None


def test_badly_named_migration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "first.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="NNN_name.sql"):
        db.migration_files(tmp_path)


async def test_outbox_events_are_published_after_commit(pool, tmp_path: Path) -> None:
    schema = _schema()
    async with pool.acquire() as conn:
        await db.migrate(conn, schema, tmp_path)
    bus = MemoryBus()
    got: list[ConnectionDeleted] = []

    async def handler(event: ConnectionDeleted) -> None:
        got.append(event)

    await bus.subscribe(unique("q"), [ConnectionDeleted], handler)
    relay = db.OutboxRelay(pool, schema, bus, interval=0.05)
    relay.start()
    event = _deleted()
    async with pool.acquire() as conn, conn.transaction():
        await db.add_to_outbox(conn, schema, [event])
    relay.kick()
    for _ in range(200):
        if got:
            break
        await asyncio.sleep(0.01)
    await relay.stop()
    await bus.close()
    assert got == [event]
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox") == 0


async def test_one_kick_publishes_more_than_a_batch(pool, tmp_path: Path) -> None:
    """A backlog bigger than one batch (events queued while the broker was away) goes out
    whole after one kick, without waiting for the periodic sweep."""
    schema = _schema()
    async with pool.acquire() as conn:
        await db.migrate(conn, schema, tmp_path)
    bus = MemoryBus()
    got: list[str] = []

    async def handler(event: ConnectionDeleted) -> None:
        got.append(event.connection_id)

    await bus.subscribe(unique("q"), [ConnectionDeleted], handler)
    backlog = [_deleted(f"c{n}") for n in range(db.RELAY_BATCH * 2 + 7)]
    async with pool.acquire() as conn, conn.transaction():
        await db.add_to_outbox(conn, schema, backlog)
    relay = db.OutboxRelay(pool, schema, bus, interval=60)
    relay.start()
    relay.kick()
    for _ in range(500):
        if len(got) == len(backlog):
            break
        await asyncio.sleep(0.01)
    await relay.stop()
    await bus.close()
    assert sorted(got) == sorted(e.connection_id for e in backlog)
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.outbox") == 0


async def test_rolled_back_outbox_event_is_never_published(pool, tmp_path: Path) -> None:
    schema = _schema()
    async with pool.acquire() as conn:
        await db.migrate(conn, schema, tmp_path)
    bus = MemoryBus()
    relay = db.OutboxRelay(pool, schema, bus)
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await db.add_to_outbox(conn, schema, [_deleted()])
            raise RuntimeError("the state change failed")
    assert await relay.drain() == 0
    assert bus.published == {}


async def test_event_is_claimed_once_per_consumer(pool, tmp_path: Path) -> None:
    schema = _schema()
    event = _deleted()
    async with pool.acquire() as conn:
        await db.migrate(conn, schema, tmp_path)
        assert await db.claim_event(conn, schema, "a", event) is True
        assert await db.claim_event(conn, schema, "a", event) is False
        assert await db.claim_event(conn, schema, "b", event) is True
