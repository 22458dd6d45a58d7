"""The dispatcher: claims due webhooks, has them signed, POSTs them and records the outcome."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import orjson
import structlog

from terapi_common import tracing
from terapi_common.bus import Bus
from terapi_common.clock import Clock
from terapi_common.errors import ServiceUnavailableError, TerapiError
from terapi_webhooks import domain
from terapi_webhooks.domain import AttemptResult, Delivery, Outcome, RetryPolicy
from terapi_webhooks.signing import signed_headers
from terapi_webhooks.store import Store
from terapi_webhooks.targets import PrivateTargetError, refusal

log = structlog.get_logger("terapi.webhooks")

LEASE_MARGIN_SECONDS = 5.0


@dataclass(frozen=True)
class DispatchSettings:
    """Limits of one dispatcher."""

    policy: RetryPolicy
    timeout_seconds: float
    sign_timeout_seconds: float
    allow_private_targets: bool
    capacity: int = 32
    poll_seconds: float = 1.0

    @property
    def lease(self) -> timedelta:
        """Long enough for signing and the POST; a crashed worker's row comes back after it."""
        return timedelta(
            seconds=self.timeout_seconds + self.sign_timeout_seconds + LEASE_MARGIN_SECONDS
        )


class Dispatcher:
    """A background task delivering due webhooks, at most `capacity` at a time."""

    def __init__(
        self, *, store: Store, bus: Bus, http: aiohttp.ClientSession, clock: Clock,
        settings: DispatchSettings, on_recorded: Callable[[], None],
    ) -> None:
        self._store, self._bus, self._http, self._clock = store, bus, http, clock
        self._settings = settings
        self._on_recorded = on_recorded
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._saturated = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """New webhooks were committed: look now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhooks dispatcher")

    async def stop(self) -> None:
        """Claim nothing more and let the attempts in flight finish, bounded by their timeouts."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._in_flight:
            grace = self._settings.lease.total_seconds()
            _, late = await asyncio.wait(set(self._in_flight), timeout=grace)
            for task in late:  # their leases expire and another worker takes them
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), self._settings.poll_seconds)
            except TimeoutError:
                pass
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self.dispatch_due()
            except Exception:  # noqa: BLE001  # the loop must outlive a database hiccup
                log.exception("webhooks.claim_failed")

    async def dispatch_due(self) -> int:
        """Claim due webhooks up to the free capacity and start their attempts."""
        free = self._settings.capacity - len(self._in_flight)
        if free <= 0:
            return 0
        now = self._clock.now()
        batch = await self._store.claim_due(
            now=now, lease_until=now + self._settings.lease, limit=free
        )
        self._saturated = len(batch) == free
        for delivery in batch:
            task = asyncio.create_task(self._attempt(delivery), name=delivery.webhook_id)
            self._in_flight.add(task)
            task.add_done_callback(self._attempt_done)
        return len(batch)

    def _attempt_done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if self._saturated:  # more may be waiting than the last claim could take
            self._wake.set()

    async def _attempt(self, delivery: Delivery) -> None:
        attempt = delivery.attempts + 1
        with tracing.span("webhooks.deliver", webhook_id=delivery.webhook_id, attempt=attempt):
            try:
                outcome = await self._try(delivery)
                recorded = await self._store.record(delivery, outcome)
            except Exception:  # noqa: BLE001  # the lease brings the webhook back for a retry
                log.exception("webhook.attempt_failed", webhook_id=delivery.webhook_id)
                return
        if recorded and outcome.event is not None:
            self._on_recorded()
        log.info(
            "webhook.attempt", webhook_id=delivery.webhook_id, attempt=attempt,
            url=domain.display_url(delivery.url), outcome=outcome.status,
            status_code=outcome.status_code, error=outcome.error, recorded=recorded,
        )

    async def _try(self, delivery: Delivery) -> Outcome:
        now = self._clock.now()
        reason = refusal(delivery.url, allow_private=self._settings.allow_private_targets)
        if reason is not None:
            result = AttemptResult(error=reason, refused=True)
        else:
            body = orjson.dumps(delivery.payload).decode()
            try:
                headers = await signed_headers(
                    self._bus, environment_id=delivery.environment_id,
                    webhook_id=delivery.webhook_id, timestamp=int(now.timestamp()), body=body,
                )
            except ServiceUnavailableError:
                later = now + timedelta(seconds=self._settings.policy.first_retry_seconds)
                return domain.postpone(delivery, until=later, error="the vault did not sign")
            except TerapiError as exc:
                error = f"could not sign: {exc.code}"
                if exc.http_status < 500:  # the vault refuses for good: environment_not_found
                    return domain.abandon(
                        delivery, attempts=delivery.attempts, status_code=None, error=error,
                        now=now,
                    )
                # A fault on the vault's side may pass; counting it as an attempt keeps a
                # lasting one from retrying forever.
                result = AttemptResult(error=error)
            else:
                result = await post(
                    self._http, delivery.url, body, headers, seconds=self._settings.timeout_seconds
                )
        jitter = random.random()  # noqa: S311  # spreads retries; not a secret
        return domain.decide(
            delivery, result, policy=self._settings.policy, now=self._clock.now(), rand=jitter
        )


async def post(
    http: aiohttp.ClientSession, url: str, body: str, headers: dict[str, str], *, seconds: float
) -> AttemptResult:
    """POST once, without following redirects; any failure becomes a described result."""
    try:
        async with http.post(
            url, data=body.encode(), headers=headers, allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=seconds),
        ) as response:
            return AttemptResult(status_code=response.status)
    except TimeoutError:
        return AttemptResult(error=f"no answer within {seconds:g}s")
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, PrivateTargetError):
            return AttemptResult(error=str(exc.os_error), refused=True)
        return AttemptResult(error=f"could not connect: {exc.os_error.strerror or 'refused'}")
    except aiohttp.ClientError as exc:
        return AttemptResult(error=f"request failed: {type(exc).__name__}")
