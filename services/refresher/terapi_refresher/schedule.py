"""The refresh loop: claim due connections, refresh each under a lock, reschedule."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import structlog

from terapi_common.errors import ProviderError, TerapiError
from terapi_common.events import (
    ErrorInfo,
    GetConnectionCredentials,
    LogMessage,
    OperationFinished,
    RefreshFailed,
    SealedConnection,
)
from terapi_refresher import domain
from terapi_refresher.refresh import Tools, refresh
from terapi_refresher.store import DueRefresh, Store

log = structlog.get_logger("terapi.refresher")


class Scheduler:
    """Runs due refreshes; replicas share the work through row claims and advisory locks."""

    def __init__(self, store: Store, tools: Tools, *, interval: float = 1.0, batch: int = 8):
        self._store = store
        self._tools = tools
        self._interval = interval
        self._batch = batch
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
            try:
                result = await refresh(item, self._tools, operation_id=operation_id)
            except TerapiError as exc:
                await self._failed(item, exc, started, operation_id)
                return
            now = self._tools.clock.now()
            await self._store.reschedule(
                item, next_refresh_at=domain.next_refresh_at(result.expires_at, now=now),
                attempts=0)
            await self._publish_outcome(item, result.connection, started, operation_id, None)
            log.info("refresh.succeeded", stored=result.stored)

    async def _failed(self, item: DueRefresh, exc: TerapiError, started: datetime,
                      operation_id: str) -> None:
        attempts = item.attempts + 1
        provider_error = exc.provider_error if isinstance(exc, ProviderError) else None
        permanent = domain.is_permanent(provider_error) or exc.code in (
            "not_refreshable", "connection_not_found", "integration_not_found")
        now = self._tools.clock.now()
        await self._store.reschedule(
            item, next_refresh_at=None if permanent else domain.retry_at(attempts, now=now),
            attempts=attempts)
        log.warning("refresh.failed", code=exc.code, provider_error=provider_error,
                    attempts=attempts, permanent=permanent)
        sealed = await self._connection_facts(item)
        if sealed is None:
            return
        error = ErrorInfo(code=exc.code, message=exc.message)
        await self._publish_outcome(item, sealed, started, operation_id, error)
        if domain.should_notify(attempts, permanent=permanent):
            await self._tools.bus.publish(RefreshFailed(
                environment_id=item.environment_id, connection_id=item.connection_id,
                integration_id=item.integration_id, provider=sealed.provider,
                auth_mode=sealed.auth_mode, environment=sealed.environment_name,
                end_user=sealed.end_user, operation_id=operation_id, attempts=attempts,
                error=error, failed_version=sealed.version))

    async def _connection_facts(self, item: DueRefresh) -> SealedConnection | None:
        try:
            reply = await self._tools.bus.request(GetConnectionCredentials(
                environment_id=item.environment_id, integration_id=item.integration_id,
                connection_id=item.connection_id))
        except TerapiError:
            return None
        return reply if isinstance(reply, SealedConnection) else None

    async def _publish_outcome(self, item: DueRefresh, sealed: SealedConnection,
                               started: datetime, operation_id: str,
                               error: ErrorInfo | None) -> None:
        message = ("Credentials refreshed" if error is None
                   else f"Refresh failed: {error.code}: {error.message}")
        await self._tools.bus.publish(OperationFinished(
            environment_id=item.environment_id, operation_id=operation_id, kind="refresh",
            operation="refresh", status="success" if error is None else "failed",
            integration_id=item.integration_id, connection_id=item.connection_id,
            provider=sealed.provider, auth_mode=sealed.auth_mode, end_user=sealed.end_user,
            started_at=started, ended_at=self._tools.clock.now(), error=error,
            messages=[LogMessage(level="info" if error is None else "error", message=message)],
        ))
