"""A refresh the refresher gave up on shows on the connection until new credentials come."""

from __future__ import annotations

import asyncio

import pytest

from terapi_common.events import ErrorInfo, RefreshFailed
from terapi_common.memory_bus import MemoryBus
from tests.integration.vault.conftest import Api, Env, store_connection

pytestmark = pytest.mark.integration


def gave_up(env: Env, integration_id: str, connection_id: str, *, version: int) -> RefreshFailed:
    return RefreshFailed(
        environment_id=env.id, environment=env.name, integration_id=integration_id,
        connection_id=connection_id, provider="api-key", auth_mode="API_KEY", attempts=3,
        error=ErrorInfo(code="token_exchange_failed", message="invalid_grant: revoked"),
        failed_version=version,
    )


async def errors_of(api: Api, connection_id: str) -> list[dict]:
    status, body = await api.call("GET", f"/connections/{connection_id}")
    assert status == 200, body
    return body["errors"]


async def until_errors(api: Api, connection_id: str, expected: int) -> list[dict]:
    for _ in range(200):
        errors = await errors_of(api, connection_id)
        if len(errors) == expected:
            return errors
        await asyncio.sleep(0.01)
    raise AssertionError(f"{connection_id} still has {errors}")


async def test_refresh_given_up_shows_until_the_user_authorizes_again(
    api: Api, bus: MemoryBus, env: Env, key_ring, api_key_integration: str
) -> None:
    await store_connection(bus, key_ring, env, api_key_integration, "conn-r")
    assert await errors_of(api, "conn-r") == []

    await bus.publish(gave_up(env, api_key_integration, "conn-r", version=1))

    [error] = await until_errors(api, "conn-r", 1)
    assert (error["type"], error["code"], error["attempts"]) == (
        "refresh", "token_exchange_failed", 3)
    status, listed = await api.call("GET", "/connections", params={"search": "conn-r"})
    assert listed["data"][0]["errors"] == [error]

    await store_connection(bus, key_ring, env, api_key_integration, "conn-r")  # re-authorized
    assert await errors_of(api, "conn-r") == []


async def test_a_late_failure_about_replaced_credentials_is_ignored(
    api: Api, bus: MemoryBus, env: Env, key_ring, api_key_integration: str
) -> None:
    await store_connection(bus, key_ring, env, api_key_integration, "conn-late")
    await store_connection(bus, key_ring, env, api_key_integration, "conn-late")  # version 2
    await store_connection(bus, key_ring, env, api_key_integration, "conn-marker")

    await bus.publish(gave_up(env, api_key_integration, "conn-late", version=1))
    await bus.publish(gave_up(env, api_key_integration, "conn-marker", version=1))
    await until_errors(api, "conn-marker", 1)  # published after the late one: both handled
    await asyncio.sleep(0.05)

    assert await errors_of(api, "conn-late") == []
