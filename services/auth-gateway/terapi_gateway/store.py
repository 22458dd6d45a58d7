"""The gateway's own state: connect sessions, OAuth flows and their results."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import asyncpg

from terapi_common.db import add_to_outbox
from terapi_common.events import Event
from terapi_gateway.domain import ConnectSession
from terapi_gateway.errors import FlowIdInUseError
from terapi_gateway.flow import RESULT_LIFETIME, FlowResult, OAuthFlow, pending

SCHEMA = "gateway"
FLOW_COLUMNS = (
    "id, environment_id, environment_name, integration_id, connection_id, provider, auth_mode,"
    " end_user, connection_config, requested_scopes, redirect_uri, origin, return_url, flow_id,"
    " operation_id, started_at, expires_at, browser_digest"
)

# Single use: the first callback to mark the row wins; a replay finds nothing to update.
_CONSUME_FLOW = (
    "UPDATE gateway.oauth_flows SET consumed_at = $2"  # noqa: S608  # constant columns
    " WHERE lookup_digest = ANY($1::text[]) AND consumed_at IS NULL"
    f" RETURNING {FLOW_COLUMNS}, secret_encrypted"
)


# Rows are written under the newest key's digest and looked up by every listed key's, so
# one written before a key version was added is still found until it expires.
class Store(Protocol):
    """The gateway's own state."""

    async def add_session(self, session: ConnectSession, *, token_digest: str) -> None:
        """Keep a new connect session under the keyed digest of its token."""

    async def find_session(self, token_digests: Sequence[str]) -> ConnectSession | None:
        """The session any of the token's digests names, expired or not; None if none."""

    async def add_flow(
        self, flow: OAuthFlow, *, lookup_digest: str, secret: bytes | None, now: datetime
    ) -> None:
        """Record a flow (and its pending result); a flow id already used is a 409."""

    async def consume_flow(
        self, lookup_digests: Sequence[str], *, now: datetime
    ) -> tuple[OAuthFlow, bytes | None] | None:
        """Mark the flow any of the digests names used and return it with its secret; None
        if unknown or used."""

    async def record_result(
        self, environment_id: int, flow_id: uuid.UUID, result: FlowResult, *, now: datetime
    ) -> None:
        """Keep a result for a flow id that has none yet (a first result is never replaced)."""

    async def finish_result(
        self, environment_id: int, flow_id: uuid.UUID, result: FlowResult, *, now: datetime
    ) -> None:
        """Settle a pending result."""

    async def find_result(self, flow_id: uuid.UUID) -> FlowResult | None:
        """The result under a flow id, if any."""

    async def queue_events(self, events: Sequence[Event]) -> None:
        """Keep events in the outbox until the relay has published them."""

    async def purge_expired(self, *, now: datetime) -> int:
        """Drop flows, results and sessions past their lifetime; returns how many rows went."""


EXPIRED_SESSION_GRACE = timedelta(days=1)


class PgStore:
    """`Store` on the `gateway` schema."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add_session(self, session: ConnectSession, *, token_digest: str) -> None:
        await self._pool.execute(
            "INSERT INTO gateway.connect_sessions (id, environment_id, environment_name,"
            " token_digest, end_user, allowed_integrations, expires_at, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            session.id,
            session.environment_id,
            session.environment_name,
            token_digest,
            session.end_user.model_dump(mode="json", exclude_none=True),
            list(session.allowed_integrations) if session.allowed_integrations is not None
            else None,
            session.expires_at,
            session.created_at,
        )

    # The token is what tells us the environment, so this lookup cannot be scoped by one;
    # the digest is unique across environments.
    async def find_session(self, token_digests: Sequence[str]) -> ConnectSession | None:
        row = await self._pool.fetchrow(
            "SELECT id, environment_id, environment_name, end_user, allowed_integrations,"
            " expires_at, created_at FROM gateway.connect_sessions"
            " WHERE token_digest = ANY($1::text[])",
            token_digests,
        )
        return None if row is None else ConnectSession.model_validate(dict(row))

    async def add_flow(
        self, flow: OAuthFlow, *, lookup_digest: str, secret: bytes | None, now: datetime
    ) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            if flow.flow_id is not None:
                started = pending(flow.integration_id, flow.connection_id)
                if not await _insert_result(conn, flow.environment_id, flow.flow_id, started,
                                            now=now):
                    raise FlowIdInUseError("this flow_id was used already; start with a new one")
            await conn.execute(
                f"INSERT INTO gateway.oauth_flows ({FLOW_COLUMNS}, lookup_digest,"  # noqa: S608  # constant columns
                " secret_encrypted) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
                " $13, $14, $15, $16, $17, $18, $19, $20)",
                *_flow_values(flow), lookup_digest, secret,
            )

    # Like sessions, the digest of a high-entropy value is what names the environment.
    async def consume_flow(
        self, lookup_digests: Sequence[str], *, now: datetime
    ) -> tuple[OAuthFlow, bytes | None] | None:
        row = await self._pool.fetchrow(_CONSUME_FLOW, lookup_digests, now)
        if row is None:
            return None
        values = dict(row)
        secret = values.pop("secret_encrypted")
        return OAuthFlow.model_validate(values), None if secret is None else bytes(secret)

    async def record_result(
        self, environment_id: int, flow_id: uuid.UUID, result: FlowResult, *, now: datetime
    ) -> None:
        async with self._pool.acquire() as conn:
            await _insert_result(conn, environment_id, flow_id, result, now=now)

    async def finish_result(
        self, environment_id: int, flow_id: uuid.UUID, result: FlowResult, *, now: datetime
    ) -> None:
        await self._pool.execute(
            "UPDATE gateway.oauth_results SET status = $3, integration_id = $4,"
            " connection_id = $5, error = $6, updated_at = $7"
            " WHERE environment_id = $1 AND flow_id = $2 AND status = 'pending'",
            environment_id, flow_id, *_result_values(result), now,
        )

    # The flow id is the SDK's random capability for its own attempt, as a token would be.
    async def find_result(self, flow_id: uuid.UUID) -> FlowResult | None:
        row = await self._pool.fetchrow(
            "SELECT status, integration_id, connection_id, error FROM gateway.oauth_results"
            " WHERE flow_id = $1",
            flow_id,
        )
        return None if row is None else FlowResult.model_validate(dict(row))

    async def queue_events(self, events: Sequence[Event]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await add_to_outbox(conn, SCHEMA, events)

    async def purge_expired(self, *, now: datetime) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            flows = await conn.execute(
                "DELETE FROM gateway.oauth_flows WHERE expires_at < $1", now - RESULT_LIFETIME
            )
            results = await conn.execute(
                "DELETE FROM gateway.oauth_results WHERE expires_at < $1", now
            )
            # Kept a day past expiry so a late user still hears "expired", not "unknown".
            sessions = await conn.execute(
                "DELETE FROM gateway.connect_sessions WHERE expires_at < $1",
                now - EXPIRED_SESSION_GRACE,
            )
        return sum(int(status.split()[-1]) for status in (flows, results, sessions))


async def _insert_result(
    conn: asyncpg.Connection, environment_id: int, flow_id: uuid.UUID, result: FlowResult,
    *, now: datetime,
) -> bool:
    status = await conn.execute(
        "INSERT INTO gateway.oauth_results (flow_id, environment_id, status, integration_id,"
        " connection_id, error, created_at, updated_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) ON CONFLICT (flow_id) DO NOTHING",
        flow_id, environment_id, *_result_values(result), now, now + RESULT_LIFETIME,
    )
    return status.endswith(" 1")


def _result_values(result: FlowResult) -> tuple[Any, ...]:
    error = result.error.model_dump() if result.error is not None else None
    return result.status, result.integration_id, result.connection_id, error


def _flow_values(flow: OAuthFlow) -> tuple[Any, ...]:
    return (
        flow.id, flow.environment_id, flow.environment_name, flow.integration_id,
        flow.connection_id, flow.provider, flow.auth_mode,
        flow.end_user.model_dump(mode="json", exclude_none=True) if flow.end_user else None,
        flow.connection_config, flow.requested_scopes, flow.redirect_uri, flow.origin,
        flow.return_url, flow.flow_id, flow.operation_id, flow.started_at, flow.expires_at,
        flow.browser_digest,
    )
