"""How failed refreshes are retried and when the app is told."""

from __future__ import annotations

from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from terapi_common.errors import ServiceUnavailableError
from terapi_common.events import Event, OperationFinished, RefreshFailed
from terapi_refresher.schedule import Scheduler
from tests.integration.refresher.conftest import wait_published

pytestmark = pytest.mark.integration


async def _fail_rounds(setup, rounds: int) -> None:
    scheduler = Scheduler(setup["store"], setup["tools"])
    for _ in range(rounds):
        await scheduler.run_once()
        setup["clock"].advance(hours=2)


async def test_dead_grant_notice_outlives_a_failed_publish(setup, monkeypatch) -> None:
    """The broker refuses the notice: it stays in the outbox and goes out once it is back."""
    setup["vault"].credentials["refresh_token"] = "rt-revoked-by-user"
    real_publish = setup["bus"].publish

    async def broker_down(event: Event) -> None:
        raise ServiceUnavailableError("the broker is unreachable")

    monkeypatch.setattr(setup["bus"], "publish", broker_down)
    await Scheduler(setup["store"], setup["tools"]).run_once()
    assert await wait_published(setup["published"], RefreshFailed, within=0.3) == []
    assert await setup["pool"].fetchval("SELECT count(*) FROM refresher.outbox") > 0

    monkeypatch.setattr(setup["bus"], "publish", real_publish)
    failed = await wait_published(setup["published"], RefreshFailed)
    assert [e.connection_id for e in failed] == ["alice"]


async def test_app_is_told_once_after_repeated_failures(setup) -> None:
    setup["provider"].behaviour.token_error = "temporarily_unavailable"
    await _fail_rounds(setup, 5)
    failed = await wait_published(setup["published"], RefreshFailed, count=2, within=0.5)
    assert [e.attempts for e in failed] == [3]


async def test_notice_missed_at_the_threshold_is_sent_at_the_next_failure(setup) -> None:
    """The third failure could not even read the connection; the fourth tells the app."""
    setup["provider"].behaviour.token_error = "temporarily_unavailable"
    await _fail_rounds(setup, 2)
    setup["vault"].unanswered_reads = 1
    await _fail_rounds(setup, 2)
    failed = await wait_published(setup["published"], RefreshFailed)
    assert [e.attempts for e in failed] == [4]


async def test_refresh_failed_names_the_version_that_failed(setup) -> None:
    """A re-authorization landing during the failed refresh is not marked as failed."""
    vault = setup["vault"]
    vault.credentials["refresh_token"] = "rt-revoked-by-user"

    def reauthorized_meanwhile() -> None:
        vault.after_read = None
        vault.version += 1

    vault.after_read = reauthorized_meanwhile
    await Scheduler(setup["store"], setup["tools"]).run_once()
    failed = await wait_published(setup["published"], RefreshFailed)
    assert failed[0].failed_version == 1


async def test_misconfigured_client_is_retried_not_declared_dead(setup) -> None:
    """invalid_client blames the integration's setup, which its owner can fix."""
    setup["provider"].behaviour.token_error = "invalid_client"
    await Scheduler(setup["store"], setup["tools"]).run_once()
    now = setup["clock"].now()
    assert await setup["store"].due(setup["env"], until=now + timedelta(minutes=2)) == ["alice"]
    assert await wait_published(setup["published"], RefreshFailed, within=0.3) == []


async def test_unexpected_error_backs_off_and_is_reported(setup) -> None:
    setup["vault"].credentials_aad = "not-this-connection"  # unreadable credentials
    with capture_logs() as logs:
        await Scheduler(setup["store"], setup["tools"]).run_once()
    now = setup["clock"].now()
    assert await setup["store"].due(setup["env"], until=now + timedelta(seconds=10)) == []
    assert await setup["store"].due(setup["env"], until=now + timedelta(minutes=1)) == ["alice"]
    finished = await wait_published(setup["published"], OperationFinished)
    assert finished[0].status == "failed" and finished[0].error.code == "internal_error"
    assert "refresh.crashed" in [entry["event"] for entry in logs]
