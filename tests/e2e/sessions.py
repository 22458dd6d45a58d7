"""Connect sessions in states the HTTP API cannot produce on demand."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from terapi_common.crypto import KeyRing, random_token
from terapi_common.db import create_pool
from terapi_common.events import EndUser
from terapi_gateway import domain
from terapi_gateway.domain import ConnectSession
from terapi_gateway.store import PgStore
from tests.conftest import run_sync
from tests.e2e.stack import Stack


def expired_session(stack: Stack, end_user_id: str, allowed: list[str] | None = None) -> str:
    """The token of a dev-environment session that ran out a minute ago.

    Sessions never change once opened, so a gateway may keep the ones it has seen: an
    expired one is planted in the gateway's table, as written when it was opened 31 minutes
    ago, instead of editing a session the gateway already knows.
    """
    assert stack.database_url, "needs a stack on a real database"
    key_ring = KeyRing.from_spec(stack.env["TERAPI_ENCRYPTION_KEY"])
    token = random_token(domain.SESSION_TOKEN_PREFIX)
    now = datetime.now(UTC)

    async def plant() -> None:
        pool = await create_pool(stack.database_url, min_size=1, max_size=1)
        try:
            environment_id = await pool.fetchval(
                "SELECT id FROM vault.environments WHERE name = 'dev'")
            await PgStore(pool).add_session(
                ConnectSession(
                    id=uuid.uuid4(), environment_id=environment_id, environment_name="dev",
                    end_user=EndUser(id=end_user_id),
                    allowed_integrations=tuple(allowed) if allowed else None,
                    expires_at=now - timedelta(minutes=1), created_at=now - timedelta(minutes=31),
                ),
                token_digest=key_ring.digest(token, purpose=domain.SESSION_DIGEST_PURPOSE),
            )
        finally:
            await pool.close()

    run_sync(plant())
    return token
