"""The refresh loop: claim due connections, refresh each under a lock, reschedule."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime

import structlog

from terapi_common.errors import ProviderError, TerapiError
from terapi_common.events import (
    ErrorInfo,
    Event,
    LogMessage,
    OperationFinished,
    RefreshFailed,
    SealedConnection,
)
from terapi_refresher import domain
from terapi_refresher.refresh import Tools, read_connection, renew, write_back
from terapi_refresher.store import DueRefresh, PendingWrite, Store

log = structlog.get_logger("terapi.refresher")


def _nothing() -> None:
    pass


class Scheduler:
    """Runs due refreshes; replicas share the work through row claims and advisory locks."""

    def __init__(self, store: Store, tools: Tools, *, interval: float = 1.0, batch: int = 8,
                 kick: Callable[[], None] = _nothing):
        self._store = store
        self._tools = tools
        self._interval = interval
        self._batch = batch
        self._kick = kick  # wakes the outbox relay after events were queued
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="refresh scheduler")

    async def stop(self) -> None:
        """Finish the refreshes in hand, then stop."""
        self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception:  # noqa: BLE001  # the loop must outlive a database hiccup
                log.exception("refresh.loop_failed")
            try:
                await asyncio.wait_for(self._stopping.wait(), self._interval)
            except TimeoutError:
                pass

    async def run_once(self) -> int:
        """Claim and refresh one batch of due connections; returns how many were claimed."""
        due = await self._store.claim_due(now=self._tools.clock.now(), lease=domain.CLAIM_LEASE,
                                          limit=self._batch)
        await asyncio.gather(*(self._refresh_one(item) for item in due))
        return len(due)

    async def _refresh_one(self, item: DueRefresh) -> None:
        async with self._store.exclusive(item.lock_key) as held:
            if not held:  # another replica is refreshing this connection right now
                return
            started = self._tools.clock.now()
            operation_id = str(uuid.uuid4())
            structlog.contextvars.bind_contextvars(connection_id=item.connection_id,
                                                   operation_id=operation_id)
            sealed: SealedConnection | None = None
            try:
                sealed = await read_connection(item, self._tools)
                written = await self._renew_and_store(item, sealed, operation_id)
            except TerapiError as exc:
                await self._failed(item, exc, sealed, started, operation_id)
                return
            except Exception:  # noqa: BLE001  # a bug must still back off and be heard of
                log.exception("refresh.crashed")
                crash = TerapiError("the refresh failed unexpectedly", code="internal_error")
                await self._failed(item, crash, sealed, started, operation_id)
                return
            if written is None:
                # The vault refused: the credentials changed since they were read. The
                # event announcing that change schedules the next refresh, not these.
                await self._store.drop_pending(item)
                log.info("refresh.superseded")
                return
            await self._succeeded(item, sealed, written, started, operation_id)

    async def _renew_and_store(self, item: DueRefresh, sealed: SealedConnection,
                               operation_id: str) -> PendingWrite | None:
        """Renewed credentials the vault stored, or None when it refused them."""
        pending = item.pending
        if pending is not None and not domain.is_pending_current(
                pending.replaces_version, vault_version=sealed.version):
            # Our earlier write landed after all, or the connection was re-authorized:
            # either way the held credentials are stale.
            await self._store.drop_pending(item)
            pending = None
        if pending is None:
            pending = await renew(item, sealed, self._tools)
            # Keep them before asking the vault: the provider may have rotated the refresh
            # token already, and a lost write-back must not cost the grant.
            await self._store.hold_pending(item, pending)
        else:
            log.info("refresh.write_back_retried")
        stored = await write_back(item, pending, self._tools, operation_id=operation_id)
        return pending if stored else None

    async def _succeeded(self, item: DueRefresh, sealed: SealedConnection,
                         written: PendingWrite, started: datetime, operation_id: str) -> None:
        now = self._tools.clock.now()
        await self._store.record_success(
            item, next_refresh_at=domain.next_refresh_at(written.expires_at, now=now),
            events=[self._outcome(item, sealed, started, operation_id, None)])
        self._kick()
        log.info("refresh.succeeded")

    async def _failed(self, item: DueRefresh, exc: TerapiError, sealed: SealedConnection | None,
                      started: datetime, operation_id: str) -> None:
        provider_error = exc.provider_error if isinstance(exc, ProviderError) else None
        plan = domain.plan_failure(previous_attempts=item.attempts, code=exc.code,
                                   provider_error=provider_error, notified=item.notified,
                                   now=self._tools.clock.now())
        error = ErrorInfo(code=exc.code, message=exc.message)
        events: list[Event] = []
        # Without the vault's facts no event can be built; a later round tells the app.
        if sealed is not None:
            events.append(self._outcome(item, sealed, started, operation_id, error))
            if plan.notify:
                events.append(_refresh_failed(item, sealed, plan, error, operation_id))
        await self._store.record_failure(
            item, attempts=plan.attempts, next_refresh_at=plan.next_refresh_at,
            notified=item.notified or (plan.notify and sealed is not None), events=events)
        self._kick()
        log.warning("refresh.failed", code=exc.code, provider_error=provider_error,
                    attempts=plan.attempts, permanent=plan.permanent)

    def _outcome(self, item: DueRefresh, sealed: SealedConnection, started: datetime,
                 operation_id: str, error: ErrorInfo | None) -> OperationFinished:
        message = ("Credentials refreshed" if error is None
                   else f"Refresh failed: {error.code}: {error.message}")
        return OperationFinished(
            environment_id=item.environment_id, operation_id=operation_id, kind="refresh",
            operation="refresh", status="success" if error is None else "failed",
            integration_id=item.integration_id, connection_id=item.connection_id,
            provider=sealed.provider, auth_mode=sealed.auth_mode, end_user=sealed.end_user,
            started_at=started, ended_at=self._tools.clock.now(), error=error,
            messages=[LogMessage(level="info" if error is None else "error", message=message)],
        )


def _refresh_failed(item: DueRefresh, sealed: SealedConnection, plan: domain.FailurePlan,
                    error: ErrorInfo, operation_id: str) -> RefreshFailed:
    """The notice that the app may need to re-authorize; names the version that failed."""
    return RefreshFailed(
        environment_id=item.environment_id, connection_id=item.connection_id,
        integration_id=item.integration_id, provider=sealed.provider,
        auth_mode=sealed.auth_mode, environment=sealed.environment_name,
        end_user=sealed.end_user, operation_id=operation_id, attempts=plan.attempts,
        error=error, failed_version=sealed.version)
