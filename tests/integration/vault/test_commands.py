"""The vault's request/reply commands, through the bus the other services use."""

from __future__ import annotations

import asyncio
import contextlib

import orjson
import pytest
from standardwebhooks import Webhook

from terapi_common.crypto import connection_aad, sha256_hex
from terapi_common.errors import (
    InvalidInputError,
    NotFoundError,
    ServiceUnavailableError,
    UnauthorizedError,
)
from terapi_common.events import (
    AuthenticateSecretKey,
    ConnectionCreated,
    ConnectionUpdated,
    EndUser,
    EnvironmentIdentity,
    GetIntegration,
    GetWebhookTargets,
    ResolvePublicKey,
    SignWebhook,
)
from terapi_common.memory_bus import MemoryBus
from terapi_common.runtime import RUNTIME
from tests.integration.vault.conftest import (
    OAUTH2_CREDENTIALS,
    Api,
    Env,
    collect,
    store_connection,
    wait_for,
)

pytestmark = pytest.mark.integration

MISSING_ENVIRONMENT = 2_000_000_000


async def test_secret_key_digest_authenticates_its_environment(bus: MemoryBus, env: Env) -> None:
    reply = await bus.request(AuthenticateSecretKey(key_digest=sha256_hex(env.secret_key)))
    assert reply == EnvironmentIdentity(
        environment_id=env.id, environment_name=env.name, connect_sessions_required=False
    )


async def test_unknown_secret_key_digest_is_unauthorized(bus: MemoryBus, env: Env) -> None:
    with pytest.raises(UnauthorizedError) as caught:
        await bus.request(AuthenticateSecretKey(key_digest=sha256_hex("sk_nobody")))
    assert caught.value.code == "invalid_secret_key"


async def test_public_key_resolves_to_its_environment(bus: MemoryBus, env: Env) -> None:
    reply = await bus.request(ResolvePublicKey(public_key=env.public_key))
    assert (reply.environment_id, reply.environment_name) == (env.id, env.name)


async def test_unknown_public_key_is_unauthorized(bus: MemoryBus, env: Env) -> None:
    with pytest.raises(UnauthorizedError) as caught:
        await bus.request(ResolvePublicKey(public_key="pk_nobody"))
    assert caught.value.code == "invalid_public_key"


async def test_get_integration_seals_the_oauth_client_for_the_gateway(
    bus: MemoryBus, api: Api, env: Env, key_ring
) -> None:
    integration_id = await api.create_integration("test-oauth2", credentials=OAUTH2_CREDENTIALS)
    reply = await bus.request(GetIntegration(environment_id=env.id, integration_id=integration_id))
    assert (reply.provider, reply.auth_mode, reply.environment_name) == (
        "test-oauth2", "OAUTH2", env.name
    )
    assert reply.scopes == ["read", "write"]
    config = key_ring.unseal(reply.sealed_config, aad=f"integration:{env.id}:{integration_id}")
    assert config == {
        "client_id": "client-123", "client_secret": "s3cr3t-client-abcd", "provider_config": {}
    }


async def test_get_integration_without_client_has_no_sealed_config(
    bus: MemoryBus, api: Api, env: Env
) -> None:
    integration_id = await api.create_integration("api-key")
    reply = await bus.request(GetIntegration(environment_id=env.id, integration_id=integration_id))
    assert reply.auth_mode == "API_KEY"
    assert reply.sealed_config is None


async def test_get_unknown_integration_is_not_found(bus: MemoryBus, env: Env) -> None:
    with pytest.raises(NotFoundError) as caught:
        await bus.request(GetIntegration(environment_id=env.id, integration_id="nope"))
    assert caught.value.code == "integration_not_found"


async def test_get_integration_of_unknown_environment_is_not_found(
    bus: MemoryBus, env: Env
) -> None:
    with pytest.raises(NotFoundError) as caught:
        await bus.request(GetIntegration(environment_id=MISSING_ENVIRONMENT, integration_id="x"))
    assert caught.value.code == "environment_not_found"


async def test_first_store_creates_and_announces_connection_created(
    bus: MemoryBus, api: Api, env: Env, key_ring
) -> None:
    seen = await collect(bus, ConnectionCreated, ConnectionUpdated)
    integration_id = await api.create_integration("api-key")
    user = EndUser(id="u-1", email="ada@example.com")
    reply = await store_connection(
        bus, key_ring, env, integration_id, "conn-1", end_user=user, operation_id="op-1"
    )
    assert (reply.operation, reply.provider, reply.environment_name) == (
        "creation", "api-key", env.name
    )
    await wait_for(lambda: len(seen) == 1)
    event = seen[0]
    assert isinstance(event, ConnectionCreated)
    assert (event.connection_id, event.integration_id, event.environment) == (
        "conn-1", integration_id, env.name
    )
    assert (event.end_user, event.operation_id, event.operation) == (user, "op-1", "creation")


async def test_store_whose_caller_gave_up_before_the_write_stores_nothing(
    bus: MemoryBus, api: Api, env: Env, key_ring, client
) -> None:
    """The gateway reports an attempt that timed out as failed: a connection stored after
    that would contradict it (a failure webhook, then a creation for the same attempt)."""
    seen = await collect(bus, ConnectionCreated)
    integration_id = await api.create_integration("api-key")
    pool = client.app[RUNTIME].pool
    held = []
    with contextlib.suppress(TimeoutError):
        while True:  # the database is slow to give the vault a connection
            held.append(await pool.acquire(timeout=0.2))
    try:
        with pytest.raises(ServiceUnavailableError):
            await asyncio.wait_for(store_connection(bus, key_ring, env, integration_id, "late",
                                                    timeout=0.5), 5)
        await asyncio.sleep(0.3)
    finally:
        for connection in held:
            await pool.release(connection)
    await asyncio.sleep(0.3)  # the vault now gets its connection, past the deadline
    assert (await api.call("GET", "/connections/late"))[0] == 404
    assert seen == []


async def test_second_store_overrides_and_announces_connection_updated(
    bus: MemoryBus, api: Api, env: Env, key_ring
) -> None:
    seen = await collect(bus, ConnectionUpdated)
    integration_id = await api.create_integration("api-key")
    await store_connection(bus, key_ring, env, integration_id, "conn-1")
    reply = await store_connection(
        bus, key_ring, env, integration_id, "conn-1",
        credentials={"type": "API_KEY", "api_key": "k-2"},
    )
    assert reply.operation == "override"
    await wait_for(lambda: len(seen) == 1)
    assert seen[0].operation == "override"
    status, body = await api.call("GET", "/connections/conn-1")
    assert body["credentials"]["api_key"] == "k-2"


async def test_connection_events_carry_no_secret(
    bus: MemoryBus, api: Api, env: Env, key_ring
) -> None:
    seen = await collect(bus, ConnectionCreated)
    integration_id = await api.create_integration("api-key")
    await store_connection(
        bus, key_ring, env, integration_id,
        credentials={"type": "API_KEY", "api_key": "very-secret-api-key"},
    )
    await wait_for(lambda: len(seen) == 1)
    assert b"very-secret-api-key" not in orjson.dumps(seen[0].to_wire())


async def test_store_for_unknown_integration_is_not_found(
    bus: MemoryBus, env: Env, key_ring
) -> None:
    with pytest.raises(NotFoundError) as caught:
        await store_connection(bus, key_ring, env, "no-such-integration")
    assert caught.value.code == "integration_not_found"


async def test_store_with_another_auth_mode_than_the_provider_is_refused(
    bus: MemoryBus, api: Api, env: Env, key_ring
) -> None:
    integration_id = await api.create_integration("api-key")
    with pytest.raises(InvalidInputError) as caught:
        await store_connection(
            bus, key_ring, env, integration_id, auth_mode="BASIC",
            credentials={"type": "BASIC", "username": "ada", "password": "pw"},
        )
    assert caught.value.code == "invalid_auth_mode"


async def test_credentials_sealed_for_another_connection_are_refused(
    bus: MemoryBus, api: Api, env: Env, key_ring
) -> None:
    from terapi_common.events import StoreConnection

    integration_id = await api.create_integration("api-key")
    sealed = key_ring.seal(
        {"type": "API_KEY", "api_key": "k"}, aad=connection_aad(env.id, integration_id, "other")
    )
    with pytest.raises(InvalidInputError) as caught:
        await bus.request(StoreConnection(
            environment_id=env.id, integration_id=integration_id, connection_id="conn-1",
            auth_mode="API_KEY", sealed_credentials=sealed,
        ))
    assert caught.value.code == "invalid_sealed_credentials"


async def test_credentials_missing_their_mode_fields_are_refused(
    bus: MemoryBus, api: Api, env: Env, key_ring
) -> None:
    integration_id = await api.create_integration("api-key")
    with pytest.raises(InvalidInputError) as caught:
        await store_connection(bus, key_ring, env, integration_id, credentials={"type": "API_KEY"})
    assert caught.value.code == "invalid_credentials"


async def test_unprintable_connection_id_is_refused(
    bus: MemoryBus, api: Api, env: Env, key_ring
) -> None:
    integration_id = await api.create_integration("api-key")
    with pytest.raises(InvalidInputError) as caught:
        await store_connection(bus, key_ring, env, integration_id, "bad\nid")
    assert caught.value.code == "invalid_connection_id"


async def test_webhook_targets_list_the_set_urls(bus: MemoryBus, api: Api, env: Env) -> None:
    await api.call("PATCH", "/environment", json={
        "webhook_url": "https://app.test/hooks", "send_auth_failure_webhooks": True,
    })
    reply = await bus.request(GetWebhookTargets(environment_id=env.id))
    assert reply.urls == ["https://app.test/hooks"]
    assert (reply.send_new_connection_webhooks, reply.send_auth_failure_webhooks) == (True, True)
    assert reply.environment_name == env.name


async def test_webhook_targets_of_unknown_environment_are_not_found(
    bus: MemoryBus, env: Env
) -> None:
    with pytest.raises(NotFoundError) as caught:
        await bus.request(GetWebhookTargets(environment_id=MISSING_ENVIRONMENT))
    assert caught.value.code == "environment_not_found"


async def test_webhook_signature_verifies_with_standard_webhooks(bus: MemoryBus, env: Env) -> None:
    import time

    payload = '{"type":"connection.created","data":{"connection_id":"c1"}}'
    timestamp = int(time.time())
    reply = await bus.request(SignWebhook(
        environment_id=env.id, webhook_id="msg_1", timestamp=timestamp, payload=payload
    ))
    headers = {
        "webhook-id": "msg_1", "webhook-timestamp": str(timestamp),
        "webhook-signature": reply.signature,
    }
    assert Webhook(env.webhook_secret).verify(payload, headers) == orjson.loads(payload)


async def test_signing_for_unknown_environment_is_not_found(bus: MemoryBus, env: Env) -> None:
    with pytest.raises(NotFoundError) as caught:
        await bus.request(SignWebhook(
            environment_id=MISSING_ENVIRONMENT, webhook_id="m", timestamp=1, payload="{}"
        ))
    assert caught.value.code == "environment_not_found"
