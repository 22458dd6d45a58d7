"""Connections pinned for the hot read: reused, replaced when broken, returned on close."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from terapi_vault.lane import ReadLane

pytestmark = pytest.mark.integration


async def test_reads_reuse_a_pinned_connection(pool) -> None:
    lane = ReadLane(pool, size=1)
    first = await lane.fetch("SELECT pg_backend_pid() AS pid")
    # The pool itself hands its most recent connection back; the pinned one is not in it.
    from_pool = await pool.fetchval("SELECT pg_backend_pid()")
    second = await lane.fetch("SELECT pg_backend_pid() AS pid")
    assert first[0]["pid"] == second[0]["pid"] != from_pool
    await lane.close()


async def test_connection_killed_by_the_server_is_replaced(pool) -> None:
    lane = ReadLane(pool, size=1)
    [row] = await lane.fetch("SELECT pg_backend_pid() AS pid")
    await pool.execute("SELECT pg_terminate_backend($1)", row["pid"])
    failures, deadline = 0, time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            [again] = await lane.fetch("SELECT pg_backend_pid() AS pid")
        except Exception:  # which error a killed connection raises depends on timing
            failures += 1
            continue
        if again["pid"] != row["pid"]:
            break
        await asyncio.sleep(0.01)
    assert again["pid"] != row["pid"]
    assert failures <= 1
    await lane.close()


async def test_failed_statement_does_not_lose_the_slot(pool) -> None:
    lane = ReadLane(pool, size=1)
    with pytest.raises(asyncpg.PostgresError):
        await lane.fetch("SELECT 1 / 0")
    assert (await lane.fetch("SELECT 2 AS two"))[0]["two"] == 2
    await lane.close()


async def test_close_gives_the_connections_back_to_the_pool(pool) -> None:
    lane = ReadLane(pool, size=2)
    await lane.fetch("SELECT 1")
    held = pool.get_size() - pool.get_idle_size()
    await lane.close()
    assert pool.get_size() - pool.get_idle_size() == held - 1
