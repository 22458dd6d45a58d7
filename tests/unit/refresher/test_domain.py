"""When credentials get refreshed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from terapi_refresher.domain import MIN_DELAY, REFRESH_LEAD, next_refresh_at

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_credentials_that_never_expire_are_not_scheduled() -> None:
    assert next_refresh_at(None, now=NOW) is None


def test_refresh_happens_ahead_of_expiry() -> None:
    expires = NOW + timedelta(hours=1)
    assert next_refresh_at(expires, now=NOW) == expires - REFRESH_LEAD


def test_already_stale_credentials_are_refreshed_soon_not_in_the_past() -> None:
    assert next_refresh_at(NOW - timedelta(minutes=1), now=NOW) == NOW + MIN_DELAY
