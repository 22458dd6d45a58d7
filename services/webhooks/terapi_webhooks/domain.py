"""Webhook rules: which events notify, the payload, retry timing and attempt outcomes."""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

from terapi_common.events import (
    AuthFailed,
    ConnectionCreated,
    ConnectionUpdated,
    Event,
    RefreshFailed,
    WebhookAbandoned,
    WebhookDelivered,
    WebhookTargets,
)

NotifyingEvent = ConnectionCreated | ConnectionUpdated | AuthFailed | RefreshFailed
FailureEvent = AuthFailed | RefreshFailed
DeliveryStatus = Literal["pending", "delivered", "abandoned"]
WEBHOOK_ID_BYTES = 16  # 128 bits: 26 base32 characters


@dataclass(frozen=True)
class NewDelivery:
    """A webhook to create for one target URL."""

    webhook_id: str
    url: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Delivery:
    """A claimed webhook, ready for an attempt."""

    webhook_id: str
    environment_id: int
    source_event_id: UUID
    url: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to keep trying."""

    max_attempts: int
    first_retry_seconds: float
    max_retry_seconds: float


@dataclass(frozen=True)
class AttemptResult:
    """What one POST got: a status code, or an error and whether retrying can help."""

    status_code: int | None = None
    error: str | None = None
    refused: bool = False  # the target may never be called (private address)


@dataclass(frozen=True)
class Outcome:
    """The delivery's new state after an attempt, and the event to announce it."""

    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    status_code: int | None
    error: str | None
    delivered_at: datetime | None = None
    event: Event | None = None


def is_notifying(event: Event) -> bool:
    """First authorizations, re-authorizations and their failures notify, and so does a
    refresh the refresher has given up on (the app must ask its user to reconnect); a
    successful refresh does not."""
    if isinstance(event, RefreshFailed):
        return True
    if isinstance(event, ConnectionCreated | ConnectionUpdated | AuthFailed):
        return event.operation in ("creation", "override")
    return False


def is_wanted(event: NotifyingEvent, targets: WebhookTargets) -> bool:
    """Whether the environment's toggles ask for this kind of webhook."""
    if isinstance(event, FailureEvent):
        return targets.send_auth_failure_webhooks
    return targets.send_new_connection_webhooks


def webhook_payload(event: NotifyingEvent, environment_name: str) -> dict[str, Any]:
    """The body the app's backend receives: exactly these keys."""
    failed = isinstance(event, FailureEvent)
    return {
        "type": "auth",
        "operation": "refresh" if isinstance(event, RefreshFailed) else event.operation,
        "success": not failed,
        "connection_id": event.connection_id,
        "integration_id": event.integration_id,
        "provider": event.provider,
        "auth_mode": event.auth_mode,
        "environment": environment_name,
        "end_user": event.end_user.model_dump(mode="json") if event.end_user else None,
        "error": event.error.model_dump(mode="json") if failed else None,
    }


def plan_deliveries(
    event: NotifyingEvent, targets: WebhookTargets, webhook_ids: list[str]
) -> list[NewDelivery]:
    """One webhook per distinct target URL, or none when the toggle is off."""
    if not is_wanted(event, targets):
        return []
    urls = list(dict.fromkeys(targets.urls))
    payload = webhook_payload(event, targets.environment_name)
    return [NewDelivery(wid, url, payload) for wid, url in zip(webhook_ids, urls, strict=False)]


def webhook_id(entropy: bytes) -> str:
    """`msg_` and 26 base32 characters, from 16 random bytes."""
    return "msg_" + base64.b32encode(entropy).decode().rstrip("=").lower()


def retry_delay(attempt: int, *, policy: RetryPolicy, rand: float) -> float:
    """Seconds before the next try after `attempt` failed: exponential, full jitter."""
    doublings = min(attempt - 1, 60)  # past this the maximum rules anyway; no float overflow
    ceiling = min(policy.max_retry_seconds, policy.first_retry_seconds * 2**doublings)
    return ceiling * min(max(rand, 0.0), 1.0)


def decide(
    delivery: Delivery, result: AttemptResult, *, policy: RetryPolicy, now: datetime, rand: float
) -> Outcome:
    """Delivered on 2xx; abandoned on 410, a refused target or the last attempt; else retry."""
    attempt = delivery.attempts + 1
    code, error = result.status_code, result.error
    if code is not None and 200 <= code < 300:
        event = WebhookDelivered(
            environment_id=delivery.environment_id, occurred_at=now,
            webhook_id=delivery.webhook_id, url=display_url(delivery.url), attempt=attempt,
            status_code=code, source_event_id=delivery.source_event_id,
            **_subject(delivery),
        )
        return Outcome("delivered", attempt, None, code, None, delivered_at=now, event=event)
    reason = error or f"endpoint answered HTTP {code}"
    if code == 410:
        reason = "endpoint answered 410 Gone"
    if code == 410 or result.refused or attempt >= policy.max_attempts:
        return abandon(delivery, attempts=attempt, status_code=code, error=reason, now=now)
    retry_at = now + timedelta(seconds=retry_delay(attempt, policy=policy, rand=rand))
    return Outcome("pending", attempt, retry_at, code, reason)


def abandon(
    delivery: Delivery, *, attempts: int, status_code: int | None, error: str, now: datetime
) -> Outcome:
    """Give up on a webhook and say so on the bus."""
    event = WebhookAbandoned(
        environment_id=delivery.environment_id, occurred_at=now,
        webhook_id=delivery.webhook_id, url=display_url(delivery.url), attempts=attempts,
        last_error=error, source_event_id=delivery.source_event_id,
        **_subject(delivery),
    )
    return Outcome("abandoned", attempts, None, status_code, error, event=event)


def _subject(delivery: Delivery) -> dict[str, str | None]:
    """The connection a webhook was about, so its delivery can be found by connection."""
    return {"integration_id": delivery.payload.get("integration_id"),
            "connection_id": delivery.payload.get("connection_id")}


def postpone(delivery: Delivery, *, until: datetime, error: str) -> Outcome:
    """Try again later without counting an attempt (nothing was sent)."""
    return Outcome("pending", delivery.attempts, until, None, error)


def display_url(url: str) -> str:
    """The URL without credentials, query or fragment, fit for events and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast IP; False for private, loopback, link-local...

    An IPv6 address that leads to IPv4 ones is judged by them: a translator or tunnel
    would carry the request there.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    embedded = embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else []
    return all(_is_public(v4) for v4 in embedded) if embedded else _is_public(ip)


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not ip.is_multicast


NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 §2.1
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291 §2.5.5.1, deprecated
# Where RFC 6052 §2.2 puts the IPv4 address for each prefix length (/48, /56, /64, /96) a
# local-use translator may use; which one it does is its operator's choice, so all count.
_LOCAL_USE_LAYOUTS = (
    (slice(6, 8), slice(9, 11)), (slice(7, 8), slice(9, 12)), (slice(9, 13),), (slice(12, 16),),
)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to (mapped, 6to4, Teredo, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)  # the relay server and the client behind it
    if ip in NAT64_WELL_KNOWN or ip in IPV4_COMPATIBLE:
        return [ipaddress.IPv4Address(ip.packed[12:])]
    if ip in NAT64_LOCAL_USE:
        return [ipaddress.IPv4Address(b"".join(ip.packed[part] for part in layout))
                for layout in _LOCAL_USE_LAYOUTS]
    return []
