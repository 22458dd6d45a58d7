"""Use cases: turn connection and auth events into webhooks waiting for delivery."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import structlog

from terapi_common.bus import Bus, InvalidMessageError, RetryableError
from terapi_common.clock import Clock
from terapi_common.errors import NotFoundError, TerapiError
from terapi_common.events import GetWebhookTargets, WebhookTargets
from terapi_webhooks import domain
from terapi_webhooks.domain import NotifyingEvent
from terapi_webhooks.store import Store

log = structlog.get_logger("terapi.webhooks")


async def on_notifying_event(
    event: NotifyingEvent, *, store: Store, bus: Bus, clock: Clock, wake: Callable[[], None]
) -> None:
    """Create one webhook per target URL of the event's environment, once per event."""
    if not domain.is_notifying(event):
        return
    targets = await fetch_targets(bus, event.environment_id)
    if targets is None:
        return
    ids = [domain.webhook_id(secrets.token_bytes(domain.WEBHOOK_ID_BYTES)) for _ in targets.urls]
    planned = domain.plan_deliveries(event, targets, ids)
    created = await store.add_deliveries(event, planned, now=clock.now())
    if created:
        wake()
    log.info("webhooks.planned", planned=len(planned), created=created)


async def fetch_targets(bus: Bus, environment_id: int) -> WebhookTargets | None:
    """The environment's URLs and toggles; None if it is gone. A silent vault means retry."""
    try:
        reply = await bus.request(GetWebhookTargets(environment_id=environment_id))
    except NotFoundError:
        log.info("webhooks.environment_gone")
        return None
    except TerapiError as exc:
        if exc.http_status >= 500:
            raise RetryableError(f"webhook targets unavailable: {exc.code}") from exc
        raise InvalidMessageError(f"webhook targets refused: {exc.code}") from exc
    assert isinstance(reply, WebhookTargets)
    return reply
