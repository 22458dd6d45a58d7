"""When to refresh a connection's credentials and what a failure means: pure rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# Refresh this long before expiry, so a token read just before it is still usable.
REFRESH_LEAD = timedelta(minutes=5)
# Never schedule closer than this, so a token that is already stale is retried calmly.
MIN_DELAY = timedelta(seconds=5)
# How long a replica holds a claimed refresh before another may take it over.
CLAIM_LEASE = timedelta(minutes=2)
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=1)
# FIRST_RETRY doubled this often already passes MAX_RETRY; more would overflow timedelta.
MAX_DOUBLINGS = 7
# After this many failures in a row the app is told (refresh-failed event and webhook).
ATTEMPTS_BEFORE_NOTICE = 3
# RFC 6749 §5.2: only invalid_grant says the grant itself is dead (the user revoked it or
# it expired). invalid_client and unauthorized_client blame the integration's client
# setup, which its owner can fix, so those are retried like any passing failure.
PERMANENT_ERRORS = frozenset({"invalid_grant"})
# Terapi's own codes that mean nothing is left to refresh.
PERMANENT_CODES = frozenset({"not_refreshable", "connection_not_found", "integration_not_found"})


@dataclass(frozen=True)
class FailurePlan:
    """What to do after a failed refresh."""

    attempts: int
    permanent: bool
    next_refresh_at: datetime | None  # None: stop refreshing this connection
    notify: bool  # tell the app (connection.refresh_failed)


def next_refresh_at(expires_at: datetime | None, *, now: datetime) -> datetime | None:
    """The time to refresh credentials that expire at `expires_at`; None if they never do."""
    if expires_at is None:
        return None
    return max(expires_at - REFRESH_LEAD, now + MIN_DELAY)


def retry_at(attempts: int, *, now: datetime) -> datetime:
    """Exponential backoff after `attempts` failures in a row, capped."""
    delay = FIRST_RETRY * (2 ** min(max(0, attempts - 1), MAX_DOUBLINGS))
    return now + min(delay, MAX_RETRY)


def is_permanent(provider_error: str | None) -> bool:
    return provider_error in PERMANENT_ERRORS


def should_notify(attempts: int, *, permanent: bool, notified: bool = False) -> bool:
    """Tell the app on a dead grant at once, else once failures have piled up; only once."""
    if notified:
        return False
    return permanent or attempts >= ATTEMPTS_BEFORE_NOTICE


def plan_failure(*, previous_attempts: int, code: str, provider_error: str | None,
                 notified: bool, now: datetime) -> FailurePlan:
    """Stop on a dead grant, else back off; decide whether the app hears of it now."""
    attempts = previous_attempts + 1
    permanent = is_permanent(provider_error) or code in PERMANENT_CODES
    return FailurePlan(
        attempts=attempts, permanent=permanent,
        next_refresh_at=None if permanent else retry_at(attempts, now=now),
        notify=should_notify(attempts, permanent=permanent, notified=notified),
    )


def is_pending_current(pending_version: int, *, vault_version: int) -> bool:
    """Held renewed credentials still replace what the vault has; else someone wrote since."""
    return pending_version == vault_version


def refresh_grant(credentials: dict[str, object]) -> dict[str, str] | None:
    """The grant that renews these credentials, or None when nothing can renew them."""
    if credentials.get("type") == "OAUTH2_CC":
        return {"grant_type": "client_credentials"}
    token = credentials.get("refresh_token")
    if isinstance(token, str) and token:
        return {"grant_type": "refresh_token", "refresh_token": token}
    return None
