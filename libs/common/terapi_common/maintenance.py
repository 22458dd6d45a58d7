"""Housekeeping every service runs now and then: rows past their lifetime go.

Deletes go a batch at a time so a large backlog never holds long locks or one huge
transaction; replicas may run the same job at once, which only means less work for each.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

log = structlog.get_logger("terapi.maintenance")

PRUNE_INTERVAL_SECONDS = 3600.0
PRUNE_BATCH = 5000


async def repeat(job: Callable[[], Awaitable[int]], *, every: float, name: str) -> None:
    """Run `job` now and then every `every` seconds (jittered, so replicas spread out)
    until cancelled; a failure is logged and the next round tries again."""
    while True:
        try:
            removed = await job()
            if removed:
                log.info("maintenance.pruned", job=name, removed=removed)
        except Exception:  # noqa: BLE001  # a database hiccup must not end the loop
            log.exception("maintenance.failed", job=name)
        await asyncio.sleep(every * random.uniform(0.9, 1.1))  # noqa: S311  # not a secret


def start(job: Callable[[], Awaitable[int]], *, every: float, name: str) -> asyncio.Task[None]:
    return asyncio.create_task(repeat(job, every=every, name=name), name=f"maintenance {name}")


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def delete_in_batches(
    pool: asyncpg.Pool, table: str, condition: str, *args: object, batch: int = PRUNE_BATCH
) -> int:
    """Delete the rows of `table` matching `condition` ($1... are `args`), `batch` at a time;
    how many went. `table` and `condition` are fixed text from the caller, never input."""
    statement = (
        f"DELETE FROM {table} WHERE ctid IN "  # noqa: S608  # fixed text, see above
        f"(SELECT ctid FROM {table} WHERE {condition} LIMIT {int(batch)})"
    )
    total = 0
    while True:
        removed = int((await pool.execute(statement, *args)).split()[-1])
        total += removed
        if removed < batch:
            return total
