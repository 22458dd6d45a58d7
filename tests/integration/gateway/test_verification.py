"""API-key and Basic credentials are checked with the provider before they are stored."""

from __future__ import annotations

import pytest

from tests.integration.gateway.conftest import FakeVault, error_code
from tests.support.mock_provider import MockProvider

pytestmark = pytest.mark.integration


async def test_accepted_api_key_is_stored_with_its_connection_config(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-key", "API_KEY")
    response = await client.post(
        f"/auth/api-key/{integration}?public_key={env.public_key}",
        json={"api_key": "good-123", "connection_config": {"site": "eu"}},
    )
    assert response.status == 200, await response.text()
    assert "/api/key-check?site=eu" in provider.paths
    command, credentials = vault.stored[0]
    assert credentials == {"type": "API_KEY", "api_key": "good-123"}
    assert command.connection_config == {"site": "eu"}


async def test_connection_config_may_come_as_params_and_defaults_apply(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-key", "API_KEY")
    await client.post(
        f"/auth/api-key/{integration}?public_key={env.public_key}", json={"api_key": "good-1"}
    )
    assert "/api/key-check?site=main" in provider.paths
    assert vault.stored[0][0].connection_config == {"site": "main"}


async def test_rejected_api_key_is_connection_test_failed_and_stores_nothing(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-key", "API_KEY")
    response = await client.post(
        f"/auth/api-key/{integration}?public_key={env.public_key}", json={"api_key": "bad-123"}
    )
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "connection_test_failed"
    assert "401" in error["message"]
    assert vault.stored == []


async def test_api_key_of_the_wrong_shape_is_invalid_credentials(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-key", "API_KEY")
    response = await client.post(
        f"/auth/api-key/{integration}?public_key={env.public_key}", json={"api_key": "no spaces"}
    )
    assert response.status == 400
    assert await error_code(response) == "invalid_credentials"
    assert provider.paths == []


@pytest.mark.parametrize(("provider_name", "mode", "fields", "field"), [
    ("mock-key-any", "api-key", {"api_key": "good-1\r\nX-Injected: 1"}, "api_key"),
    ("mock-basic", "basic", {"username": "ada\n", "password": "s3cret"}, "username"),
    ("mock-basic", "basic", {"username": "ada", "password": "s3\x00cret"}, "password"),
])
async def test_credential_with_control_characters_is_refused_naming_the_field(
    client, vault: FakeVault, provider: MockProvider, provider_name: str, mode: str,
    fields: dict[str, str], field: str,
) -> None:
    """A pasted key with a line break is the end user's mistake, not an unreachable provider."""
    env = vault.add_environment()
    integration = vault.add_integration(env, provider_name, mode.upper().replace("-", "_"))
    response = await client.post(f"/auth/{mode}/{integration}?public_key={env.public_key}",
                                 json=fields)
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_credentials"
    assert field in error["message"]
    assert provider.paths == []
    assert vault.stored == []


async def test_bad_connection_config_is_refused_before_the_check(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-key", "API_KEY")
    response = await client.post(
        f"/auth/api-key/{integration}?public_key={env.public_key}",
        params={"params": '{"site": "evil.com/x"}'}, json={"api_key": "good-1"},
    )
    assert response.status == 400
    assert await error_code(response) == "invalid_connection_config"
    assert provider.paths == []


async def test_connection_config_in_body_and_params_at_once_is_refused(
    client, vault: FakeVault
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-key", "API_KEY")
    response = await client.post(
        f"/auth/api-key/{integration}?public_key={env.public_key}",
        params={"params": '{"site": "eu"}'},
        json={"api_key": "good-1", "connection_config": {"site": "us"}},
    )
    assert response.status == 400
    assert await error_code(response) == "invalid_request"


async def test_basic_provider_is_checked_with_a_basic_header(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    provider.basic_users["ada"] = "s3cret"
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-basic", "BASIC")
    accepted = await client.post(
        f"/auth/basic/{integration}?public_key={env.public_key}",
        json={"username": "ada", "password": "s3cret"},
    )
    rejected = await client.post(
        f"/auth/basic/{integration}?public_key={env.public_key}",
        json={"username": "ada", "password": "wrong"},
    )
    assert accepted.status == 200
    assert await error_code(rejected) == "connection_test_failed"
    assert len(vault.stored) == 1


async def test_unreachable_provider_is_connection_test_failed(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-unreachable", "API_KEY")
    response = await client.post(
        f"/auth/api-key/{integration}?public_key={env.public_key}", json={"api_key": "k"}
    )
    assert response.status == 502
    error = (await response.json())["error"]
    assert error["code"] == "connection_test_failed"
    assert "could not be reached" in error["message"]
    assert vault.stored == []


async def test_providers_without_verification_store_at_once(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    response = await client.post(
        f"/auth/api-key/{integration}?public_key={env.public_key}", json={"api_key": "anything"}
    )
    assert response.status == 200
    assert provider.paths == []
