"""PgStore keeps connect sessions under their token digest."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from terapi_common.db import migrate
from terapi_common.events import EndUser
from terapi_gateway import app
from terapi_gateway.domain import ConnectSession
from terapi_gateway.store import PgStore

from tests.conftest import unique

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(pool) -> PgStore:
    async with pool.acquire() as conn:
        await migrate(conn, app.SCHEMA, app.MIGRATIONS)
    return PgStore(pool)


def session(allowed: tuple[str, ...] | None) -> ConnectSession:
    now = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    return ConnectSession(
        id=uuid.uuid4(),
        environment_id=uuid.uuid4().int % 2_000_000_000 + 1,
        environment_name="prod",
        end_user=EndUser(id="u-1", email="ada@example.com"),
        allowed_integrations=allowed,
        expires_at=now + timedelta(minutes=30),
        created_at=now,
    )


@pytest.mark.parametrize("allowed", [None, ("github", "openai")])
async def test_session_reads_back_as_written(store: PgStore, allowed) -> None:
    written = session(allowed)
    digest = unique("digest")
    await store.add_session(written, token_digest=digest)
    assert await store.find_session(digest) == written


async def test_unknown_digest_finds_no_session(store: PgStore) -> None:
    assert await store.find_session(unique("digest")) is None
