"""The housekeeping loop outlives a failing round."""

from __future__ import annotations

import asyncio

from terapi_common import maintenance


async def test_a_failed_round_is_logged_and_the_next_one_runs() -> None:
    rounds: list[int] = []

    async def job() -> int:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise ConnectionError("database restarting")
        return 3

    task = maintenance.start(job, every=0.01, name="test")
    for _ in range(200):
        if len(rounds) >= 3:
            break
        await asyncio.sleep(0.01)
    await maintenance.stop(task)
    assert len(rounds) >= 3
    assert task.cancelled()
