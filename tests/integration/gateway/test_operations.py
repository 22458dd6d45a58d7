"""Every attempt is reported to the logs service; failures also as AuthFailed; no secrets."""

from __future__ import annotations

import uuid

import pytest
from structlog.testing import capture_logs

from terapi_common.clock import FakeClock
from terapi_common.events import AuthFailed, EndUser, Event, OperationFinished
from terapi_common.memory_bus import MemoryBus
from tests.integration.gateway.conftest import FakeVault, open_session, wait_for

pytestmark = pytest.mark.integration


def of_type(events: list[Event], kind: type[Event]) -> list:
    return [e for e in events if isinstance(e, kind)]


async def test_success_publishes_one_finished_operation_with_the_vaults_facts(
    client, vault: FakeVault, published: list[Event], clock: FakeClock
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    await client.post(
        f"/auth/api-key/{integration}?public_key={env.public_key}&connection_id=c1",
        json={"api_key": "k"},
    )
    await wait_for(lambda: len(published) == 1)
    finished = published[0]
    assert isinstance(finished, OperationFinished)
    assert finished.environment_id == env.id
    assert (finished.kind, finished.operation, finished.status) == ("auth", "creation", "success")
    assert (finished.integration_id, finished.connection_id) == (integration, "c1")
    assert (finished.provider, finished.auth_mode) == ("api-key", "API_KEY")
    assert finished.started_at == finished.ended_at == clock.now()
    assert finished.error is None
    assert [m.message for m in finished.messages] == [
        "API key connection requested",
        "credentials stored: connection created",
    ]


async def test_operation_id_is_the_one_sent_to_the_vault(
    client, vault: FakeVault, published: list[Event]
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    await client.post(
        f"/auth/api-key/{integration}?public_key={env.public_key}", json={"api_key": "k"}
    )
    await wait_for(lambda: len(published) == 1)
    sent = vault.stored[0][0].operation_id
    assert uuid.UUID(sent)
    assert published[0].operation_id == sent


async def test_second_attempt_on_same_ids_is_an_override_operation(
    client, vault: FakeVault, published: list[Event]
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "basic", "BASIC")
    url = f"/auth/basic/{integration}?public_key={env.public_key}&connection_id=c1"
    await client.post(url, json={"username": "a"})
    await client.post(url, json={"username": "b"})
    await wait_for(lambda: len(published) == 2)
    assert [e.operation for e in published] == ["creation", "override"]
    assert published[1].messages[-1].message == "credentials stored: connection overridden"
    assert published[0].operation_id != published[1].operation_id


async def test_session_attempt_carries_its_end_user(
    client, vault: FakeVault, published: list[Event]
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    token = await open_session(client, env, end_user={"id": "u-7"})
    await client.post(
        f"/auth/api-key/{integration}?connect_session_token={token}", json={"api_key": "k"}
    )
    await wait_for(lambda: len(published) == 1)
    assert published[0].end_user == EndUser(id="u-7")


async def test_vault_refusal_publishes_failed_operation_and_auth_failed(
    client, vault: FakeVault, published: list[Event]
) -> None:
    env = vault.add_environment()
    token = await open_session(client, env, end_user={"id": "u-9"})
    await client.post(
        f"/auth/api-key/nope?connect_session_token={token}&connection_id=c9",
        json={"api_key": "k"},
    )
    await wait_for(lambda: len(published) == 2)
    [finished] = of_type(published, OperationFinished)
    [failed] = of_type(published, AuthFailed)
    assert (finished.status, finished.operation) == ("failed", "creation")
    assert finished.error.code == "integration_not_found"
    assert finished.messages[-1].level == "error"
    assert failed.environment_id == env.id
    assert failed.environment == env.name
    assert (failed.integration_id, failed.connection_id) == ("nope", "c9")
    assert (failed.provider, failed.auth_mode) == (None, "API_KEY")
    assert failed.end_user == EndUser(id="u-9")
    assert failed.operation == "creation"
    assert failed.operation_id == finished.operation_id
    assert failed.error == finished.error


async def test_missing_credentials_publishes_auth_failed(
    client, vault: FakeVault, published: list[Event]
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    await client.post(f"/auth/api-key/{integration}?public_key={env.public_key}", json={})
    await wait_for(lambda: len(published) == 2)
    [failed] = of_type(published, AuthFailed)
    assert failed.error.code == "missing_credentials"
    assert failed.error.message.startswith("api_key")


async def test_request_refused_before_the_attempt_publishes_nothing(
    client, vault: FakeVault, bus: MemoryBus
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    token = await open_session(client, env, allowed_integrations=["other"])
    refused = await client.post(
        f"/auth/api-key/{integration}?connect_session_token={token}", json={"api_key": "k"}
    )
    assert refused.status == 403
    assert bus.published["operation.finished"] == 0
    assert bus.published["auth.failed"] == 0


async def test_no_secret_reaches_events_or_logs(
    client, vault: FakeVault, published: list[Event]
) -> None:
    env = vault.add_environment()
    api_key_integration = vault.add_integration(env, "api-key", "API_KEY")
    basic_integration = vault.add_integration(env, "basic", "BASIC")
    with capture_logs() as logs:
        token = await open_session(client, env)
        session = f"connect_session_token={token}"
        await client.post(
            f"/auth/api-key/{api_key_integration}?{session}", json={"api_key": "sk-SECRET-1"}
        )
        await client.post(
            f"/auth/basic/{basic_integration}?{session}",
            json={"username": "ada", "password": "pw-SECRET-2"},
        )
        await client.post(
            f"/auth/basic/nope?{session}", json={"username": "a", "password": "pw-SECRET-3"}
        )
        await wait_for(lambda: len(published) == 4)
    text = " ".join([str(logs), *(e.model_dump_json() for e in published)])
    for secret in ("sk-SECRET-1", "pw-SECRET-2", "pw-SECRET-3", token, env.secret_key):
        assert secret not in text
    assert any(entry["event"] == "gateway.auth_attempt" for entry in logs)
