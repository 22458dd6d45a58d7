"""Which events become webhooks: toggles, refreshes, redeliveries and a silent vault."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from terapi_common.clock import SystemClock
from terapi_common.events import (
    AuthFailed,
    ConnectionCreated,
    ConnectionUpdated,
    EnvironmentChanged,
    ErrorInfo,
    RefreshFailed,
)
from terapi_webhooks import handlers
from terapi_webhooks.keys import DISPATCHER, STORE
from tests.conftest import unique
from tests.integration.webhooks.conftest import new_environment_id, wait_for

pytestmark = pytest.mark.integration


def created(environment_id: int) -> ConnectionCreated:
    return ConnectionCreated(
        environment_id=environment_id, connection_id=unique("conn"), integration_id="github",
        provider="github", auth_mode="API_KEY", environment="dev",
    )


def failed(environment_id: int) -> AuthFailed:
    return AuthFailed(
        environment_id=environment_id, integration_id="github", environment="dev",
        error=ErrorInfo(code="invalid_credentials", message="bad key"),
    )


async def is_handled(pool, event) -> bool:
    return bool(await pool.fetchval(
        "SELECT 1 FROM webhooks.processed_events WHERE event_id = $1", event.event_id
    ))


@pytest.mark.parametrize(
    ("toggles", "make_event"),
    [({"connections": False}, created), ({"failures": False}, failed)],
    ids=["new-connection-toggle-off", "auth-failure-toggle-off"],
)
async def test_event_with_its_toggle_off_makes_no_webhook(
    start_webhooks, bus, vault, receiver, pool, toggles, make_event
) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url], **toggles)
    client = await start_webhooks()
    event = make_event(env)
    await bus.publish(event)
    await wait_for(lambda: vault.target_requests == 1)
    await asyncio.sleep(0.2)  # the handler's last step after the answer would be the insert
    assert await client.app[STORE].for_event(env, event.event_id) == []
    assert receiver.requests == []
    assert not await is_handled(pool, event)  # nothing planned, nothing to remember


async def test_refresh_sends_no_webhook_but_override_does(
    start_webhooks, bus, vault, receiver
) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url])
    await start_webhooks()
    common = {"environment_id": env, "connection_id": unique("conn"), "integration_id": "github",
              "provider": "github", "auth_mode": "OAUTH2", "environment": "dev"}
    await bus.publish(ConnectionUpdated(**common, operation="refresh"))
    await bus.publish(ConnectionUpdated(**common, operation="override"))
    await wait_for(lambda: receiver.requests)
    assert [orjson.loads(r.body)["operation"] for r in receiver.requests] == ["override"]
    assert vault.target_requests == 1


async def test_refresh_given_up_is_a_failed_refresh_webhook(
    start_webhooks, bus, vault, receiver
) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url], connections=False)
    await start_webhooks()
    await bus.publish(RefreshFailed(
        environment_id=env, connection_id="c1", integration_id="github", provider="github",
        auth_mode="OAUTH2", environment="dev", attempts=1,
        error=ErrorInfo(code="invalid_grant", message="the refresh token was revoked")))
    await wait_for(lambda: receiver.requests)
    body = orjson.loads(receiver.requests[0].body)
    assert (body["operation"], body["success"], body["connection_id"]) == ("refresh", False, "c1")
    assert body["error"]["code"] == "invalid_grant"


async def test_redelivered_event_makes_one_webhook(start_webhooks, bus, vault, receiver) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url])
    client = await start_webhooks()
    event = created(env)
    handle = {"store": client.app[STORE], "targets": handlers.EnvironmentTargets(bus, ttl=10),
              "clock": SystemClock(), "wake": client.app[DISPATCHER].kick}
    await asyncio.gather(*(handlers.on_notifying_event(event, **handle) for _ in range(3)))
    await handlers.on_notifying_event(event, **handle)
    await wait_for(lambda: receiver.requests)
    assert len(await client.app[STORE].for_event(env, event.event_id)) == 1


async def test_event_is_retried_until_the_vault_answers(
    start_webhooks, bus, vault, receiver
) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url])
    vault.unavailable_times = 2
    await start_webhooks()
    await bus.publish(created(env))
    await wait_for(lambda: receiver.requests)
    assert vault.target_requests == 3 and len(receiver.requests) == 1


async def test_event_is_kept_while_nobody_serves_the_targets(
    start_webhooks, bus, receiver, pool
) -> None:
    """No vault at all: the handler fails as retryable and the event is never acked away."""
    bus.rpc_timeout = 0.05
    client = await start_webhooks()
    event = created(new_environment_id())
    await bus.publish(event)
    queue = "terapi.webhooks.on_connection_created"
    await wait_for(lambda: bus.dead_letters(queue), within=10)
    assert orjson.loads(bus.dead_letters(queue)[0])["event_id"] == str(event.event_id)
    assert not await is_handled(pool, event)
    assert await client.app[STORE].for_event(event.environment_id, event.event_id) == []


async def test_targets_are_asked_once_until_the_vault_announces_a_change(
    start_webhooks, bus, vault, receiver
) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url])
    await start_webhooks()
    for _ in range(3):
        await bus.publish(created(env))
    await wait_for(lambda: len(receiver.requests) == 3)
    assert vault.target_requests == 1
    vault.configure(env, [receiver.url], connections=False)  # the app turned them off
    await bus.publish(EnvironmentChanged(environment_id=env))
    await asyncio.sleep(0.05)  # the announcement's own queue is consumed concurrently
    await bus.publish(created(env))
    await wait_for(lambda: vault.target_requests == 2)
    await asyncio.sleep(0.2)
    assert len(receiver.requests) == 3  # the new settings apply
