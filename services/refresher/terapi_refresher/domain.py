"""When to refresh a connection's credentials: pure rules, `now` passed in."""

from __future__ import annotations

from datetime import datetime, timedelta

# Refresh this long before expiry, so a token read just before it is still usable.
REFRESH_LEAD = timedelta(minutes=5)
# Never schedule closer than this, so a token that is already stale is retried calmly.
MIN_DELAY = timedelta(seconds=5)


def next_refresh_at(expires_at: datetime | None, *, now: datetime) -> datetime | None:
    """The time to refresh credentials that expire at `expires_at`; None if they never do."""
    if expires_at is None:
        return None
    return max(expires_at - REFRESH_LEAD, now + MIN_DELAY)
