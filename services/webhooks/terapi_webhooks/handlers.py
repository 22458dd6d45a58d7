"""Use cases: turn connection and auth events into webhooks waiting for delivery."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

import structlog

from terapi_common.bus import Bus, InvalidMessageError, RetryableError
from terapi_common.cache import TtlCache
from terapi_common.clock import Clock
from terapi_common.errors import NotFoundError, TerapiError
from terapi_common.events import EnvironmentChanged, GetWebhookTargets, WebhookTargets
from terapi_webhooks import domain
from terapi_webhooks.domain import NotifyingEvent
from terapi_webhooks.store import Store

log = structlog.get_logger("terapi.webhooks")


async def on_notifying_event(
    event: NotifyingEvent, *, store: Store, targets: EnvironmentTargets, clock: Clock,
    wake: Callable[[], None],
) -> None:
    """Create one webhook per target URL of the event's environment, once per event."""
    if not domain.is_notifying(event):
        return
    wanted = await targets.get(event.environment_id)
    if wanted is None:
        return
    ids = [domain.webhook_id(secrets.token_bytes(domain.WEBHOOK_ID_BYTES)) for _ in wanted.urls]
    planned = domain.plan_deliveries(event, wanted, ids)
    if not planned:  # no URL or the toggle is off: nothing to create, nothing to remember
        return
    created = await store.add_deliveries(event, planned, now=clock.now())
    if created:
        wake()
    log.info("webhooks.planned", planned=len(planned), created=created)


async def on_environment_changed(event: EnvironmentChanged, *, targets: EnvironmentTargets
                                 ) -> None:
    """The vault changed an environment's settings: ask for its targets afresh."""
    targets.forget(event.environment_id)


class EnvironmentTargets:
    """Each environment's targets, kept between its events until the vault announces a
    change (else every connection event would cost a request to the vault). Events that
    arrive together for an environment share one request, unless a change was announced
    after that request went out."""

    def __init__(self, bus: Bus, *, ttl: float) -> None:
        self._bus = bus
        self._cache: TtlCache[WebhookTargets] = TtlCache(ttl=ttl)
        self._asking: dict[int, tuple[int, asyncio.Task[WebhookTargets | None]]] = {}

    async def get(self, environment_id: int) -> WebhookTargets | None:
        cached = self._cache.get(environment_id)
        if cached is not None:
            return cached
        flight = self._asking.get(environment_id)
        if flight is None or flight[0] != self._cache.epoch:
            flight = self._ask(environment_id)
        return await asyncio.shield(flight[1])  # a waiter cancelled must not cancel the rest

    def forget(self, environment_id: int) -> None:
        self._cache.forget(environment_id)

    def _ask(self, environment_id: int) -> tuple[int, asyncio.Task[WebhookTargets | None]]:
        asked_at = self._cache.epoch

        async def ask() -> WebhookTargets | None:
            answer = await fetch_targets(self._bus, environment_id)
            if answer is not None:  # a gone environment is asked again: it may come back
                self._cache.put(environment_id, answer, read_at=asked_at)
            return answer

        flight = (asked_at, asyncio.ensure_future(ask()))
        self._asking[environment_id] = flight

        def landed(task: asyncio.Task[WebhookTargets | None]) -> None:
            if self._asking.get(environment_id) is flight:
                del self._asking[environment_id]
            if not task.cancelled():
                task.exception()  # seen by the waiters; never "never retrieved"

        flight[1].add_done_callback(landed)
        return flight


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
