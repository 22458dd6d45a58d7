"""Refreshing and revoking against a real local OAuth provider, the vault played on the bus."""

from __future__ import annotations

from datetime import timedelta

import pytest

from terapi_common.crypto import connection_aad
from terapi_common.events import OperationFinished, RefreshFailed, RevokeCredentials
from terapi_refresher import revoke
from terapi_refresher.refresh import integration_aad
from terapi_refresher.schedule import Scheduler
from tests.integration.refresher.conftest import NOW, wait_published

pytestmark = pytest.mark.integration


async def test_due_connection_gets_working_new_tokens(setup) -> None:
    scheduler = Scheduler(setup["store"], setup["tools"])
    assert await scheduler.run_once() == 1
    renewed = setup["vault"].stored[-1]
    assert renewed["access_token"] != "at-old" and renewed["access_token"] in (
        setup["provider"].access_tokens)
    assert renewed["refresh_token"] != "rt-original"  # the provider rotated it
    assert "rt-original" not in setup["provider"].refresh_tokens
    finished = await wait_published(setup["published"], OperationFinished)
    assert finished[0].kind == "refresh" and finished[0].status == "success"


async def test_refreshed_connection_is_rescheduled_before_its_new_expiry(setup) -> None:
    scheduler = Scheduler(setup["store"], setup["tools"])
    await scheduler.run_once()
    store, env = setup["store"], setup["env"]
    assert await store.due(env, until=NOW + timedelta(minutes=50)) == []
    assert await store.due(env, until=NOW + timedelta(minutes=57)) == ["alice"]


async def test_refresh_is_skipped_while_another_replica_holds_the_lock(setup) -> None:
    scheduler = Scheduler(setup["store"], setup["tools"])
    key = f"refresh:{setup['env']}:crm:alice"
    async with setup["store"].exclusive(key) as held:
        assert held
        await scheduler.run_once()
    assert setup["vault"].stored == []


async def test_claimed_refresh_is_not_claimed_again_by_another_replica(setup) -> None:
    store = setup["store"]
    first = await store.claim_due(now=setup["tools"].clock.now(), lease=timedelta(minutes=2),
                                  limit=10)
    second = await store.claim_due(now=setup["tools"].clock.now(), lease=timedelta(minutes=2),
                                   limit=10)
    assert [d.connection_id for d in first if d.environment_id == setup["env"]] == ["alice"]
    assert [d for d in second if d.environment_id == setup["env"]] == []


async def test_dead_refresh_token_stops_refreshing_and_tells_the_app(setup) -> None:
    setup["vault"].credentials["refresh_token"] = "rt-revoked-by-user"
    scheduler = Scheduler(setup["store"], setup["tools"])
    await scheduler.run_once()
    failed = await wait_published(setup["published"], RefreshFailed)
    assert failed[0].error.code == "token_exchange_failed"
    assert await setup["store"].due(setup["env"], until=NOW + timedelta(days=30)) == []


async def test_passing_failure_is_retried_later_without_telling_the_app(setup) -> None:
    setup["provider"].behaviour.token_status = 503
    setup["provider"].behaviour.token_error = "temporarily_unavailable"
    scheduler = Scheduler(setup["store"], setup["tools"])
    await scheduler.run_once()
    now = setup["tools"].clock.now()
    assert await setup["store"].due(setup["env"], until=now + timedelta(seconds=10)) == []
    assert await setup["store"].due(setup["env"], until=now + timedelta(minutes=2)) == ["alice"]
    assert [e for e in setup["published"] if isinstance(e, RefreshFailed)] == []


async def test_revocation_reaches_the_provider(setup, key_ring) -> None:
    env, vault = setup["env"], setup["vault"]
    command = RevokeCredentials(
        environment_id=env, integration_id="crm", connection_id="alice", provider="mock",
        sealed_credentials=key_ring.seal(vault.credentials,
                                         aad=connection_aad(env, "crm", "alice")),
        sealed_config=key_ring.seal({"client_id": vault.client.client_id,
                                     "client_secret": vault.client.client_secret},
                                    aad=integration_aad(env, "crm")))
    result = await revoke.on_revoke_credentials(command, tools=setup["tools"])
    assert result.revoked is True
    assert setup["provider"].revoked == ["rt-original"]


async def test_a_failed_unlock_does_not_leave_the_lock_held(pool) -> None:
    """If releasing the refresh lock fails, the session holding it is closed rather than
    pooled, so the next refresh of that connection can take the lock."""
    from contextlib import asynccontextmanager

    from terapi_refresher.store import PgStore

    class UnlockFails:
        """A pooled connection whose unlock statement fails on its way to the server."""

        def __init__(self, conn) -> None:
            self._conn = conn

        def __getattr__(self, name):
            return getattr(self._conn, name)

        async def execute(self, query: str, *args):
            if "pg_advisory_unlock" in query:
                raise ConnectionResetError("lost while unlocking")
            return await self._conn.execute(query, *args)

    class Pool:
        @asynccontextmanager
        async def acquire(self):
            async with pool.acquire() as conn:
                yield UnlockFails(conn)

    key = "refresh:1:crm:bob"
    with pytest.raises(ConnectionResetError):
        async with PgStore(Pool()).exclusive(key) as held:
            assert held
    # Advisory locks are re-entrant within a session: ask from two sessions at once, so
    # that one of them is not the session that took the lock.
    async with pool.acquire() as first, pool.acquire() as second:
        for conn in (first, second):
            assert await conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key)
            await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)
