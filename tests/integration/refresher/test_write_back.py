"""Renewed credentials reach the vault even when the first write-back goes unanswered."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from terapi_common.events import (
    ConnectionCreated,
    ConnectionDeleted,
    ConnectionUpdated,
    OperationFinished,
)
from terapi_refresher import handlers
from terapi_refresher.schedule import Scheduler
from tests.integration.refresher.conftest import wait_published
from tests.support.mock_provider import IssuedToken

pytestmark = pytest.mark.integration


async def test_rotated_tokens_survive_a_vault_outage_during_write_back(setup) -> None:
    """The provider rotated the refresh token; the next round stores it without asking again."""
    vault, provider, clock = setup["vault"], setup["provider"], setup["clock"]
    scheduler = Scheduler(setup["store"], setup["tools"])
    vault.unanswered_stores = 3
    await scheduler.run_once()
    assert vault.stored == [] and "rt-original" not in provider.refresh_tokens
    clock.advance(minutes=2)
    await scheduler.run_once()
    assert len(provider.token_requests) == 1  # the rotated token was not asked for again
    renewed = vault.stored[-1]
    assert renewed["refresh_token"] in provider.refresh_tokens  # it still works
    assert renewed["access_token"] in provider.access_tokens
    finished = await wait_published(setup["published"], OperationFinished, count=2)
    assert [e.status for e in finished] == ["failed", "success"]


async def test_write_back_the_vault_misses_once_is_retried_in_the_same_round(setup) -> None:
    setup["vault"].unanswered_stores = 1
    await Scheduler(setup["store"], setup["tools"]).run_once()
    assert len(setup["vault"].stored) == 1
    finished = await wait_published(setup["published"], OperationFinished)
    assert finished[0].status == "success"


async def test_held_credentials_are_dropped_once_the_vault_moved_on(setup) -> None:
    """A write that landed although its answer was lost leaves nothing stale to retry."""
    vault, clock = setup["vault"], setup["clock"]
    scheduler = Scheduler(setup["store"], setup["tools"])
    vault.unanswered_stores = 3
    await scheduler.run_once()
    vault.version += 1  # someone re-authorized the connection meanwhile
    vault.credentials["refresh_token"] = "rt-reauthorized"
    setup["provider"].refresh_tokens["rt-reauthorized"] = IssuedToken(
        setup["vault"].client.client_id, "read", time.time() + 999)
    clock.advance(minutes=2)
    await scheduler.run_once()
    assert setup["provider"].token_requests[-1]["refresh_token"] == "rt-reauthorized"
    assert len(vault.stored) == 1


async def test_refused_write_back_leaves_the_schedule_to_the_newer_credentials(setup) -> None:
    """The vault refuses renewed tokens when the connection changed meanwhile: its event rules."""
    vault, store, env, clock = setup["vault"], setup["store"], setup["env"], setup["clock"]
    newer_expiry = clock.now() + timedelta(minutes=20)

    async def reauthorized_meanwhile() -> None:
        vault.version += 1
        await handlers.on_connection_stored(
            ConnectionUpdated(environment_id=env, connection_id="alice", integration_id="crm",
                              provider="mock", auth_mode="OAUTH2", environment="dev",
                              expires_at=newer_expiry),
            store=store, clock=clock, consumer="c")

    vault.before_store = reauthorized_meanwhile
    await Scheduler(store, setup["tools"]).run_once()
    assert vault.stored == []
    assert await store.due(env, until=newer_expiry - timedelta(minutes=4)) == ["alice"]
    assert await wait_published(setup["published"], OperationFinished, within=0.3) == []


async def test_held_credentials_are_not_written_into_a_connection_created_again(setup) -> None:
    """A re-created connection starts again at version 1: the old tokens must not land in it."""
    vault, store, env, clock = setup["vault"], setup["store"], setup["env"], setup["clock"]
    scheduler = Scheduler(store, setup["tools"])
    vault.unanswered_stores = 3
    await scheduler.run_once()
    facts = {"environment_id": env, "connection_id": "alice", "integration_id": "crm",
             "provider": "mock", "auth_mode": "OAUTH2", "environment": "dev"}
    await handlers.on_connection_deleted(ConnectionDeleted(**facts), store=store, consumer="d")
    await handlers.on_connection_stored(
        ConnectionCreated(**facts, expires_at=clock.now() + timedelta(minutes=1)),
        store=store, clock=clock, consumer="c")
    vault.version = 1
    vault.credentials["refresh_token"] = "rt-new-grant"
    setup["provider"].refresh_tokens["rt-new-grant"] = IssuedToken(
        vault.client.client_id, "read", time.time() + 999)
    clock.advance(minutes=2)
    await scheduler.run_once()
    assert setup["provider"].token_requests[-1]["refresh_token"] == "rt-new-grant"
    assert vault.stored[-1]["refresh_token"] in setup["provider"].refresh_tokens


async def test_connection_deleted_during_its_refresh_stays_unscheduled(setup) -> None:
    vault, store, env = setup["vault"], setup["store"], setup["env"]

    async def deleted_meanwhile() -> None:
        await handlers.on_connection_deleted(
            ConnectionDeleted(environment_id=env, connection_id="alice", integration_id="crm",
                              provider="mock", auth_mode="OAUTH2", environment="dev"),
            store=store, consumer="d")

    vault.before_store = deleted_meanwhile
    await Scheduler(store, setup["tools"]).run_once()
    assert await store.due(env, until=setup["clock"].now() + timedelta(days=1)) == []
