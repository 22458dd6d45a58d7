"""Commands the refresher and the gateway use: sealed credentials, refreshed credentials,
integration lists."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from terapi_common.crypto import connection_aad
from terapi_common.errors import InvalidInputError, NotFoundError
from terapi_common.events import (
    ConnectionUpdated,
    EndUser,
    GetConnectionCredentials,
    GetIntegration,
    ListIntegrations,
    StoreRefreshedCredentials,
)
from terapi_common.memory_bus import MemoryBus
from tests.integration.vault.conftest import (
    OAUTH2_CREDENTIALS,
    PUBLIC_URL,
    Api,
    Env,
    collect,
    store_connection,
    wait_for,
)

pytestmark = pytest.mark.integration

TOKENS = {"type": "OAUTH2", "access_token": "at-1", "refresh_token": "rt-1"}
RENEWED = {"type": "OAUTH2", "access_token": "at-2", "refresh_token": "rt-2"}
EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)


async def oauth_connection(api: Api, bus: MemoryBus, env: Env, key_ring) -> str:
    integration_id = await api.create_integration("test-oauth2", credentials=OAUTH2_CREDENTIALS)
    await store_connection(
        bus, key_ring, env, integration_id, "conn-1", auth_mode="OAUTH2", credentials=TOKENS,
        end_user=EndUser(id="u-1"), connection_config={"region": "eu"},
    )
    return integration_id


def read(env: Env, integration_id: str) -> GetConnectionCredentials:
    return GetConnectionCredentials(
        environment_id=env.id, integration_id=integration_id, connection_id="conn-1"
    )


def refreshed(env: Env, integration_id: str, key_ring, *, version: int,
              credentials: dict | None = None) -> StoreRefreshedCredentials:
    aad = connection_aad(env.id, integration_id, "conn-1")
    return StoreRefreshedCredentials(
        environment_id=env.id, integration_id=integration_id, connection_id="conn-1",
        expected_version=version, expires_at=EXPIRES, operation_id="op-r",
        sealed_credentials=key_ring.seal(credentials or RENEWED, aad=aad),
    )


async def test_connection_credentials_are_sealed_for_the_refresher(
    api: Api, bus: MemoryBus, env: Env, key_ring
) -> None:
    integration_id = await oauth_connection(api, bus, env, key_ring)
    reply = await bus.request(read(env, integration_id))
    assert (reply.provider, reply.auth_mode, reply.environment_name) == (
        "test-oauth2", "OAUTH2", env.name
    )
    assert (reply.connection_config, reply.end_user, reply.version) == (
        {"region": "eu"}, EndUser(id="u-1"), 1
    )
    aad = connection_aad(env.id, integration_id, "conn-1")
    assert key_ring.unseal(reply.sealed_credentials, aad=aad) == TOKENS
    config = key_ring.unseal(reply.sealed_config, aad=f"integration:{env.id}:{integration_id}")
    assert config["client_secret"] == OAUTH2_CREDENTIALS["client_secret"]


async def test_credentials_of_unknown_connection_are_not_found(
    api: Api, bus: MemoryBus, env: Env
) -> None:
    integration_id = await api.create_integration("api-key")
    with pytest.raises(NotFoundError) as caught:
        await bus.request(read(env, integration_id))
    assert caught.value.code == "connection_not_found"


async def test_refreshed_credentials_replace_the_old_ones(
    api: Api, bus: MemoryBus, env: Env, key_ring
) -> None:
    integration_id = await oauth_connection(api, bus, env, key_ring)
    reply = await bus.request(refreshed(env, integration_id, key_ring, version=1))
    assert (reply.stored, reply.version) == (True, 2)
    _, body = await api.call(
        "GET", "/connections/conn-1", params={"include_refresh_token": "true"}
    )
    assert body["credentials"] == RENEWED


async def test_refresh_announces_connection_updated(
    api: Api, bus: MemoryBus, env: Env, key_ring
) -> None:
    integration_id = await oauth_connection(api, bus, env, key_ring)
    seen = await collect(bus, ConnectionUpdated)
    await bus.request(refreshed(env, integration_id, key_ring, version=1))
    await wait_for(lambda: len(seen) == 1)
    event = seen[0]
    assert (event.operation, event.expires_at, event.operation_id) == ("refresh", EXPIRES, "op-r")
    assert (event.connection_id, event.end_user) == ("conn-1", EndUser(id="u-1"))


async def test_refresh_from_stale_credentials_is_not_stored(
    api: Api, bus: MemoryBus, env: Env, key_ring
) -> None:
    integration_id = await oauth_connection(api, bus, env, key_ring)
    await store_connection(  # re-authorized meanwhile: version 2
        bus, key_ring, env, integration_id, "conn-1", auth_mode="OAUTH2",
        credentials={"type": "OAUTH2", "access_token": "at-new"},
    )
    reply = await bus.request(refreshed(env, integration_id, key_ring, version=1))
    assert reply.stored is False
    _, body = await api.call("GET", "/connections/conn-1")
    assert body["credentials"]["access_token"] == "at-new"


async def test_refresh_of_a_deleted_connection_is_not_stored(
    api: Api, bus: MemoryBus, env: Env, key_ring
) -> None:
    integration_id = await oauth_connection(api, bus, env, key_ring)
    await api.call("DELETE", "/connections/conn-1")
    reply = await bus.request(refreshed(env, integration_id, key_ring, version=1))
    assert reply.stored is False


async def test_refreshed_credentials_of_the_wrong_shape_are_refused(
    api: Api, bus: MemoryBus, env: Env, key_ring
) -> None:
    integration_id = await oauth_connection(api, bus, env, key_ring)
    with pytest.raises(InvalidInputError) as caught:
        await bus.request(refreshed(
            env, integration_id, key_ring, version=1, credentials={"type": "OAUTH2"}
        ))
    assert caught.value.code == "invalid_credentials"


async def test_integration_info_names_the_provider_and_callback(
    api: Api, bus: MemoryBus, env: Env
) -> None:
    integration_id = await api.create_integration("test-oauth2", credentials=OAUTH2_CREDENTIALS)
    reply = await bus.request(GetIntegration(environment_id=env.id, integration_id=integration_id))
    assert (reply.display_name, reply.callback_url) == (
        "Test OAuth 2", f"{PUBLIC_URL}/oauth/callback"
    )


async def test_integrations_are_listed_without_secrets(
    api: Api, bus: MemoryBus, env: Env
) -> None:
    first = await api.create_integration("test-oauth2", credentials=OAUTH2_CREDENTIALS)
    second = await api.create_integration("api-key")
    reply = await bus.request(ListIntegrations(environment_id=env.id))
    assert [i.integration_id for i in reply.integrations] == [first, second]
    assert all(i.sealed_config is None for i in reply.integrations)


async def test_integration_list_can_be_narrowed_to_named_ids(
    api: Api, bus: MemoryBus, env: Env
) -> None:
    await api.create_integration("api-key")
    wanted = await api.create_integration("basic")
    reply = await bus.request(ListIntegrations(environment_id=env.id, integration_ids=[wanted]))
    assert [i.integration_id for i in reply.integrations] == [wanted]
