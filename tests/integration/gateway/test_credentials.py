"""POST /auth/api-key/{id} and /auth/basic/{id}: the end user's credentials reach the vault."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from terapi_common.clock import FakeClock
from terapi_common.events import EnvironmentChanged
from terapi_common.memory_bus import MemoryBus
from tests.integration.gateway.conftest import FakeVault, error_code, open_session

pytestmark = pytest.mark.integration


async def test_api_key_reaches_the_vault_sealed_and_unseals_to_what_was_sent(
    client, vault: FakeVault
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    response = await client.post(
        f"/auth/api-key/{integration}?public_key={env.public_key}&connection_id=acme-1",
        json={"api_key": "sk-live-123"},
    )
    assert response.status == 200
    assert await response.json() == {"integration_id": integration, "connection_id": "acme-1"}
    command, credentials = vault.stored[0]
    assert "sk-live-123" not in command.sealed_credentials
    assert credentials == {"type": "API_KEY", "api_key": "sk-live-123"}


async def test_basic_credentials_reach_the_vault(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "basic", "BASIC")
    response = await client.post(
        f"/auth/basic/{integration}?public_key={env.public_key}",
        json={"username": "ada", "password": "s3cret"},
    )
    assert response.status == 200
    assert vault.stored[0][1] == {"type": "BASIC", "username": "ada", "password": "s3cret"}


async def test_basic_accepts_a_username_without_password(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "basic", "BASIC")
    response = await client.post(
        f"/auth/basic/{integration}?public_key={env.public_key}", json={"username": "key-as-user"}
    )
    assert response.status == 200
    assert vault.stored[0][1] == {"type": "BASIC", "username": "key-as-user", "password": ""}


async def test_connection_id_is_a_new_uuid4_when_not_given(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    response = await client.post(
        f"/auth/api-key/{integration}?public_key={env.public_key}", json={"api_key": "k"}
    )
    connection_id = (await response.json())["connection_id"]
    assert uuid.UUID(connection_id).version == 4
    assert vault.stored[0][0].connection_id == connection_id


@pytest.mark.parametrize("connection_id", ["", "has space", "a/b", "x" * 256, "é"])
async def test_bad_connection_id_is_400_and_reaches_no_vault(
    client, vault: FakeVault, connection_id: str
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    response = await client.post(
        f"/auth/api-key/{integration}",
        params={"public_key": env.public_key, "connection_id": connection_id},
        json={"api_key": "k"},
    )
    assert response.status == 400
    assert await error_code(response) == "invalid_connection_id"
    assert vault.stored == []


async def test_connection_id_may_use_every_allowed_character(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    chosen = "Acme_1.prod:user@example.com+x-" + "z" * 224
    response = await client.post(
        f"/auth/api-key/{integration}",
        params={"public_key": env.public_key, "connection_id": chosen},
        json={"api_key": "k"},
    )
    assert response.status == 200
    assert (await response.json())["connection_id"] == chosen


@pytest.mark.parametrize(
    ("mode", "body", "field"),
    [
        ("api-key", {}, "api_key"),
        ("api-key", {"api_key": ""}, "api_key"),
        ("api-key", {"api_key": "   "}, "api_key"),
        ("api-key", {"api_key": 42}, "api_key"),
        ("basic", {"password": "p"}, "username"),
        ("basic", {"username": "ada", "password": 7}, "password"),
    ],
)
async def test_missing_credentials_is_400_naming_the_field(
    client, vault: FakeVault, mode: str, body: dict, field: str
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(
        env, mode, "API_KEY" if mode == "api-key" else "BASIC"
    )
    url = f"/auth/{mode}/{integration}?public_key={env.public_key}"
    response = await client.post(url, json=body)
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "missing_credentials"
    assert error["message"].startswith(field)
    assert vault.stored == []


async def test_same_ids_again_send_the_new_credentials(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    url = f"/auth/api-key/{integration}?public_key={env.public_key}&connection_id=c1"
    await client.post(url, json={"api_key": "first"})
    response = await client.post(url, json={"api_key": "second"})
    assert response.status == 200
    assert vault.stored[1][1]["api_key"] == "second"


async def test_unknown_integration_is_the_vaults_404(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    response = await client.post(
        f"/auth/api-key/nope?public_key={env.public_key}", json={"api_key": "k"}
    )
    assert response.status == 404
    assert await error_code(response) == "integration_not_found"


async def test_wrong_auth_mode_is_the_vaults_400(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "basic", "BASIC")
    response = await client.post(
        f"/auth/api-key/{integration}?public_key={env.public_key}", json={"api_key": "k"}
    )
    assert response.status == 400
    assert await error_code(response) == "invalid_auth_mode"


# ---------------------------------------------------------------- who may call


async def test_no_token_and_no_public_key_is_401(client, vault: FakeVault) -> None:
    response = await client.post("/auth/api-key/openai", json={"api_key": "k"})
    assert response.status == 401
    assert await error_code(response) == "missing_auth_token"


@pytest.mark.parametrize("vault_status", [401, 404])
async def test_unknown_public_key_is_401(client, vault: FakeVault, vault_status: int) -> None:
    vault.unknown_public_key_status = vault_status
    response = await client.post("/auth/api-key/openai?public_key=pk_nobody", json={"api_key": "k"})
    assert response.status == 401
    assert await error_code(response) == "invalid_public_key"


async def test_public_key_is_refused_where_connect_sessions_are_required(
    client, vault: FakeVault
) -> None:
    env = vault.add_environment(connect_sessions_required=True)
    integration = vault.add_integration(env, "api-key", "API_KEY")
    response = await client.post(
        f"/auth/api-key/{integration}?public_key={env.public_key}", json={"api_key": "k"}
    )
    assert response.status == 403
    assert await error_code(response) == "connect_session_required"
    assert vault.stored == []


async def test_requiring_connect_sessions_applies_as_soon_as_the_vault_announces_it(
    client, vault: FakeVault, bus: MemoryBus
) -> None:
    """The gateway keeps key identities a few seconds; a changed setting must not wait."""
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    path = f"/auth/api-key/{integration}?public_key={env.public_key}"
    assert (await client.post(path, json={"api_key": "k1"})).status == 200
    vault.require_connect_sessions(env)  # PATCH /environment at the vault
    await bus.publish(EnvironmentChanged(environment_id=env.id))
    await asyncio.sleep(0.05)  # the announcement's broadcast queue is consumed concurrently
    response = await client.post(path, json={"api_key": "k2"})
    assert response.status == 403
    assert await error_code(response) == "connect_session_required"


async def test_connect_session_opens_flows_where_sessions_are_required(
    client, vault: FakeVault
) -> None:
    env = vault.add_environment(connect_sessions_required=True)
    integration = vault.add_integration(env, "api-key", "API_KEY")
    token = await open_session(client, env)
    response = await client.post(
        f"/auth/api-key/{integration}?connect_session_token={token}", json={"api_key": "k"}
    )
    assert response.status == 200


async def test_unknown_connect_session_token_is_401(client, vault: FakeVault) -> None:
    response = await client.post(
        "/auth/api-key/openai?connect_session_token=cst_forged", json={"api_key": "k"}
    )
    assert response.status == 401
    assert await error_code(response) == "invalid_connect_session_token"


async def test_connect_session_works_until_thirty_minutes(
    client, vault: FakeVault, clock: FakeClock
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    token = await open_session(client, env)
    clock.advance(minutes=29, seconds=59)
    response = await client.post(
        f"/auth/api-key/{integration}?connect_session_token={token}", json={"api_key": "k"}
    )
    assert response.status == 200


async def test_session_opened_on_one_replica_works_on_another(
    client, other_replica, vault: FakeVault, clock: FakeClock
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    token = await open_session(client, env)
    response = await other_replica.post(
        f"/auth/api-key/{integration}?connect_session_token={token}", json={"api_key": "k"}
    )
    assert response.status == 200
    clock.advance(minutes=30)  # the replica that cached it still honours the expiry
    response = await other_replica.post(
        f"/auth/api-key/{integration}?connect_session_token={token}", json={"api_key": "k"}
    )
    assert response.status == 401
    assert await error_code(response) == "connect_session_expired"


async def test_expired_connect_session_is_401(client, vault: FakeVault, clock: FakeClock) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    token = await open_session(client, env)
    clock.advance(minutes=30)
    response = await client.post(
        f"/auth/api-key/{integration}?connect_session_token={token}", json={"api_key": "k"}
    )
    assert response.status == 401
    assert await error_code(response) == "connect_session_expired"
    assert vault.stored == []


async def test_connect_session_is_preferred_over_public_key(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    token = await open_session(client, env)
    response = await client.post(
        f"/auth/api-key/{integration}?connect_session_token={token}&public_key=pk_nobody",
        json={"api_key": "k"},
    )
    assert response.status == 200


async def test_connect_session_opens_only_its_allowed_integrations(
    client, vault: FakeVault
) -> None:
    env = vault.add_environment()
    allowed = vault.add_integration(env, "api-key", "API_KEY")
    other = vault.add_integration(env, "api-key", "API_KEY")
    token = await open_session(client, env, allowed_integrations=[allowed])
    ok = await client.post(
        f"/auth/api-key/{allowed}?connect_session_token={token}", json={"api_key": "k"}
    )
    refused = await client.post(
        f"/auth/api-key/{other}?connect_session_token={token}", json={"api_key": "k"}
    )
    assert ok.status == 200
    assert refused.status == 403
    assert await error_code(refused) == "integration_not_allowed"
    assert [c.integration_id for c, _ in vault.stored] == [allowed]


async def test_connect_session_stamps_its_end_user_on_the_connection(
    client, vault: FakeVault
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "basic", "BASIC")
    end_user = {"id": "u-42", "email": "ada@example.com", "display_name": "Ada"}
    token = await open_session(client, env, end_user=end_user)
    await client.post(
        f"/auth/basic/{integration}?connect_session_token={token}", json={"username": "ada"}
    )
    assert vault.stored[0][0].end_user.model_dump() == end_user


async def test_public_key_flow_stores_no_end_user(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    await client.post(
        f"/auth/api-key/{integration}?public_key={env.public_key}", json={"api_key": "k"}
    )
    assert vault.stored[0][0].end_user is None


async def test_unauthenticated_attempt_publishes_nothing(client, vault: FakeVault, bus: MemoryBus):
    response = await client.post(
        "/auth/api-key/openai?public_key=pk_nobody", json={"api_key": "k"}
    )
    assert response.status == 401
    assert bus.published["operation.finished"] == 0
    assert bus.published["auth.failed"] == 0


async def test_a_failure_reaches_the_app_after_a_broker_outage(
    client, vault: FakeVault, bus: MemoryBus, published, monkeypatch
) -> None:
    """The failure webhook comes from auth.failed; a broker hiccup must only delay it."""
    from terapi_common.errors import ServiceUnavailableError
    from terapi_gateway.keys import GATEWAY

    env = vault.add_environment()
    real_publish = bus.publish

    async def broker_down(event) -> None:
        raise ServiceUnavailableError("the message broker is unavailable")

    monkeypatch.setattr(bus, "publish", broker_down)
    response = await client.post(
        f"/auth/api-key/nope?public_key={env.public_key}", json={"api_key": "k"}
    )
    assert response.status == 404
    for _ in range(20):  # the relay has tried and failed by now
        await asyncio.sleep(0.01)
    assert not [e for e in published if e.type == "auth.failed"]

    monkeypatch.setattr(bus, "publish", real_publish)
    client.app[GATEWAY].kick()
    for _ in range(300):
        if any(e.type == "auth.failed" for e in published):
            break
        await asyncio.sleep(0.01)
    [failed] = [e for e in published if e.type == "auth.failed"]
    assert failed.error.code == "integration_not_found"
