"""Connections pinned for hot statements: reused, replaced when broken, returned on close."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from terapi_vault.lane import StatementLane

pytestmark = pytest.mark.integration


async def test_reads_reuse_a_pinned_connection(pool) -> None:
    lane = StatementLane(pool, size=1)
    first = await lane.fetch("SELECT pg_backend_pid() AS pid")
    # The pool itself hands its most recent connection back; the pinned one is not in it.
    from_pool = await pool.fetchval("SELECT pg_backend_pid()")
    second = await lane.fetch("SELECT pg_backend_pid() AS pid")
    assert first[0]["pid"] == second[0]["pid"] != from_pool
    await lane.close()


async def test_connection_killed_by_the_server_is_replaced(pool) -> None:
    lane = StatementLane(pool, size=1)
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


async def test_failed_statement_keeps_its_connection(pool) -> None:
    """The server refusing a statement (a constraint, a division by zero) says nothing
    about the connection, which stays pinned."""
    lane = StatementLane(pool, size=1)
    [row] = await lane.fetch("SELECT pg_backend_pid() AS pid")
    with pytest.raises(asyncpg.PostgresError):
        await lane.fetch("SELECT 1 / 0")
    [again] = await lane.fetch("SELECT pg_backend_pid() AS pid")
    assert again["pid"] == row["pid"]
    await lane.close()


async def test_close_gives_the_connections_back_to_the_pool(pool) -> None:
    lane = StatementLane(pool, size=2)
    await lane.fetch("SELECT 1")
    held = pool.get_size() - pool.get_idle_size()
    await lane.close()
    assert pool.get_size() - pool.get_idle_size() == held - 1


def test_lanes_leave_half_the_pool_to_transactions() -> None:
    from terapi_vault.lane import lane_sizes

    assert lane_sizes(10) == (3, 2)
    assert lane_sizes(20) == (4, 2)
    assert lane_sizes(4) == (1, 1)
    assert lane_sizes(2) == (1, 0)  # the write goes through the pool
    assert lane_sizes(1) == (0, 0)  # a one-connection pool is never pinned


async def test_a_refused_precondition_keeps_the_connection(pool) -> None:
    """A write whose caller stopped waiting is refused before it runs; the connection it
    would have used stays in the lane."""
    lane = StatementLane(pool, size=1)
    [row] = await lane.fetch("SELECT pg_backend_pid() AS pid")

    def expired() -> None:
        raise TimeoutError("the caller stopped waiting")

    with pytest.raises(TimeoutError):
        await lane.fetch("SELECT 1", before=expired)
    [again] = await lane.fetch("SELECT pg_backend_pid() AS pid")
    assert again["pid"] == row["pid"]
    await lane.close()
