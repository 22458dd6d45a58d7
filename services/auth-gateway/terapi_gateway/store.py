"""Where connect sessions live: the `Store` port and its PostgreSQL adapter."""

from __future__ import annotations

from typing import Protocol

import asyncpg

from terapi_gateway.domain import ConnectSession


class Store(Protocol):
    """The gateway's own state."""

    async def add_session(self, session: ConnectSession, *, token_digest: str) -> None:
        """Keep a new connect session under the keyed digest of its token."""

    async def find_session(self, token_digest: str) -> ConnectSession | None:
        """The session a token digest names, expired or not; None if there is none."""


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
    async def find_session(self, token_digest: str) -> ConnectSession | None:
        row = await self._pool.fetchrow(
            "SELECT id, environment_id, environment_name, end_user, allowed_integrations,"
            " expires_at, created_at FROM gateway.connect_sessions WHERE token_digest = $1",
            token_digest,
        )
        return None if row is None else ConnectSession.model_validate(dict(row))
