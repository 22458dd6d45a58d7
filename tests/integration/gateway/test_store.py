"""PgStore keeps connect sessions under their token digest."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from terapi_common.db import migrate
from terapi_common.events import EndUser, ErrorInfo
from terapi_gateway import app
from terapi_gateway.domain import ConnectSession
from terapi_gateway.errors import FlowIdInUseError
from terapi_gateway.flow import FlowResult, OAuthFlow
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
    assert await store.find_session([digest]) == written


async def test_unknown_digest_finds_no_session(store: PgStore) -> None:
    assert await store.find_session([unique("digest")]) is None


# ---------------------------------------------------------------- OAuth flows


def oauth_flow(*, flow_id: uuid.UUID | None = None) -> OAuthFlow:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    return OAuthFlow(
        id=uuid.uuid4(), environment_id=uuid.uuid4().int % 2_000_000_000 + 1,
        environment_name="prod", integration_id="github", connection_id="c1",
        provider="github", auth_mode="OAUTH2", end_user=EndUser(id="u-1"),
        connection_config={"subdomain": "acme"}, requested_scopes=["repo"],
        redirect_uri="https://t.example.com/oauth/callback", origin="https://app.example.com",
        return_url=None, flow_id=flow_id, operation_id=str(uuid.uuid4()), started_at=now,
        expires_at=now + timedelta(minutes=10),
    )


async def test_flow_is_consumed_once_with_its_secret(store: PgStore) -> None:
    written, digest = oauth_flow(), unique("state")
    await store.add_flow(written, lookup_digest=digest, secret=b"sealed", now=written.started_at)
    first = await store.consume_flow([digest], now=written.started_at)
    second = await store.consume_flow([digest], now=written.started_at)
    assert first == (written, b"sealed")
    assert second is None


async def test_concurrent_callbacks_consume_a_flow_once(store: PgStore) -> None:
    written, digest = oauth_flow(), unique("state")
    await store.add_flow(written, lookup_digest=digest, secret=None, now=written.started_at)
    results = await asyncio.gather(
        *(store.consume_flow([digest], now=written.started_at) for _ in range(5))
    )
    assert len([r for r in results if r is not None]) == 1


async def test_flow_with_a_flow_id_starts_pending_and_settles_once(store: PgStore) -> None:
    flow_id = uuid.uuid4()
    written = oauth_flow(flow_id=flow_id)
    await store.add_flow(written, lookup_digest=unique("s"), secret=None, now=written.started_at)
    assert (await store.find_result(flow_id)).status == "pending"
    done = FlowResult(status="success", integration_id="github", connection_id="c1")
    later = FlowResult(status="failed", error=ErrorInfo(code="x", message="y"))
    await store.finish_result(written.environment_id, flow_id, done, now=written.started_at)
    await store.finish_result(written.environment_id, flow_id, later, now=written.started_at)
    assert await store.find_result(flow_id) == done


async def test_reused_flow_id_is_refused_and_records_no_flow(store: PgStore) -> None:
    flow_id = uuid.uuid4()
    first, second = oauth_flow(flow_id=flow_id), oauth_flow(flow_id=flow_id)
    digest = unique("s")
    await store.add_flow(first, lookup_digest=unique("s"), secret=None, now=first.started_at)
    with pytest.raises(FlowIdInUseError):
        await store.add_flow(second, lookup_digest=digest, secret=None, now=first.started_at)
    assert await store.consume_flow([digest], now=first.started_at) is None


async def test_expired_flows_and_results_are_purged(store: PgStore) -> None:
    flow_id = uuid.uuid4()
    written, digest = oauth_flow(flow_id=flow_id), unique("s")
    await store.add_flow(written, lookup_digest=digest, secret=None, now=written.started_at)
    await store.purge_expired(now=written.started_at + timedelta(hours=2))
    assert await store.find_result(flow_id) is None
    assert await store.consume_flow([digest], now=written.started_at) is None


async def test_expired_session_is_kept_a_day_then_purged(store: PgStore) -> None:
    """A late user still learns the session expired; after a day the row goes."""
    written = session(None)
    digest = unique("digest")
    await store.add_session(written, token_digest=digest)
    await store.purge_expired(now=written.expires_at + timedelta(hours=23))
    assert await store.find_session([digest]) == written
    await store.purge_expired(now=written.expires_at + timedelta(days=1, minutes=1))
    assert await store.find_session([digest]) is None
