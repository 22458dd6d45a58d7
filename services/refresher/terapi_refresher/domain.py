"""When to refresh a connection's credentials and what a failure means: pure rules."""

from __future__ import annotations

from datetime import datetime, timedelta

# Refresh this long before expiry, so a token read just before it is still usable.
REFRESH_LEAD = timedelta(minutes=5)
# Never schedule closer than this, so a token that is already stale is retried calmly.
MIN_DELAY = timedelta(seconds=5)
# How long a replica holds a claimed refresh before another may take it over.
CLAIM_LEASE = timedelta(minutes=2)
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=1)
# After this many failures in a row the app is told (refresh-failed event and webhook).
ATTEMPTS_BEFORE_NOTICE = 3
# RFC 6749 §5.2: these say the grant itself is dead; retrying cannot help.
PERMANENT_ERRORS = frozenset({"invalid_grant", "unauthorized_client", "invalid_client"})


def next_refresh_at(expires_at: datetime | None, *, now: datetime) -> datetime | None:
    """The time to refresh credentials that expire at `expires_at`; None if they never do."""
    if expires_at is None:
        return None
    return max(expires_at - REFRESH_LEAD, now + MIN_DELAY)


def retry_at(attempts: int, *, now: datetime) -> datetime:
    """Exponential backoff after `attempts` failures in a row, capped."""
    delay = FIRST_RETRY * (2 ** max(0, attempts - 1))
    return now + min(delay, MAX_RETRY)


def is_permanent(provider_error: str | None) -> bool:
    return provider_error in PERMANENT_ERRORS


def should_notify(attempts: int, *, permanent: bool) -> bool:
    """Tell the app on a dead grant at once, else once failures have piled up."""
    return permanent or attempts == ATTEMPTS_BEFORE_NOTICE


def refresh_grant(credentials: dict[str, object]) -> dict[str, str] | None:
    """The grant that renews these credentials, or None when nothing can renew them."""
    if credentials.get("type") == "OAUTH2_CC":
        return {"grant_type": "client_credentials"}
    token = credentials.get("refresh_token")
    if isinstance(token, str) and token:
        return {"grant_type": "refresh_token", "refresh_token": token}
    return None
