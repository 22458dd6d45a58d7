"""What a failed refresh leads to: backoff, giving up, telling the app."""

from __future__ import annotations

from datetime import UTC, datetime

from terapi_refresher.domain import (
    ATTEMPTS_BEFORE_NOTICE,
    MAX_RETRY,
    is_permanent,
    plan_failure,
    retry_at,
    should_notify,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_backoff_stays_capped_however_long_failures_go_on() -> None:
    assert retry_at(43, now=NOW) == NOW + MAX_RETRY
    assert retry_at(10_000, now=NOW) == NOW + MAX_RETRY


def test_only_invalid_grant_means_the_grant_is_dead() -> None:
    assert is_permanent("invalid_grant")
    assert not is_permanent("invalid_client")
    assert not is_permanent("unauthorized_client")


def test_misconfigured_client_is_retried_and_noticed_after_the_threshold() -> None:
    first = plan_failure(previous_attempts=0, code="token_exchange_failed",
                         provider_error="invalid_client", notified=False, now=NOW)
    assert first.next_refresh_at is not None and not first.notify
    third = plan_failure(previous_attempts=ATTEMPTS_BEFORE_NOTICE - 1,
                         code="token_exchange_failed", provider_error="invalid_client",
                         notified=False, now=NOW)
    assert third.notify and not third.permanent


def test_app_is_told_past_the_threshold_until_it_has_been() -> None:
    assert should_notify(ATTEMPTS_BEFORE_NOTICE + 1, permanent=False, notified=False)
    assert not should_notify(ATTEMPTS_BEFORE_NOTICE + 1, permanent=False, notified=True)


def test_dead_grant_stops_refreshing_and_tells_the_app_at_once() -> None:
    plan = plan_failure(previous_attempts=0, code="token_exchange_failed",
                        provider_error="invalid_grant", notified=False, now=NOW)
    assert plan.permanent and plan.next_refresh_at is None and plan.notify


def test_internal_error_is_a_passing_failure() -> None:
    plan = plan_failure(previous_attempts=0, code="internal_error", provider_error=None,
                        notified=False, now=NOW)
    assert not plan.permanent and plan.next_refresh_at is not None
