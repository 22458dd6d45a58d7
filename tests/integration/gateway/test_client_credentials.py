"""POST /auth/oauth2-cc/{id}: the gateway fetches an app-only token and stores it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from terapi_common.clock import FakeClock
from tests.integration.gateway.conftest import FakeVault, error_code
from tests.integration.gateway.oauth_steps import mock_oauth2_integration
from tests.support.mock_provider import MockProvider

pytestmark = pytest.mark.integration


async def test_integration_client_fetches_a_token_without_storing_the_client(
    client, vault: FakeVault, provider: MockProvider, clock: FakeClock
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-cc", "OAUTH2_CC", client=provider.add_client())
    response = await client.post(
        f"/auth/oauth2-cc/{integration}?public_key={env.public_key}&connection_id=jobs", json={}
    )
    assert response.status == 200, await response.text()
    command, credentials = vault.stored[0]
    assert command.auth_mode == "OAUTH2_CC"
    assert credentials["type"] == "OAUTH2_CC"
    assert credentials["access_token"] in provider.access_tokens
    assert credentials["scopes"] == ["jobs"]
    assert credentials["expires_at"] == (clock.now() + timedelta(hours=1)).isoformat()
    assert command.expires_at == clock.now() + timedelta(hours=1)
    assert "client_secret" not in credentials and "refresh_token" not in credentials
    assert provider.token_requests[-1]["grant_type"] == "client_credentials"


async def test_per_connection_client_is_used_and_kept_for_refreshes(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    own = provider.add_client()
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-cc", "OAUTH2_CC", client=provider.add_client())
    response = await client.post(
        f"/auth/oauth2-cc/{integration}?public_key={env.public_key}",
        json={"client_id": own.client_id, "client_secret": own.client_secret},
    )
    assert response.status == 200
    credentials = vault.stored[0][1]
    assert provider.token_requests[-1]["client_id"] == own.client_id
    assert (credentials["client_id"], credentials["client_secret"]) == (
        own.client_id, own.client_secret
    )


async def test_scopes_can_be_chosen_per_connection(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-cc", "OAUTH2_CC", client=provider.add_client())
    await client.post(
        f"/auth/oauth2-cc/{integration}?public_key={env.public_key}&scopes=a,b", json={}
    )
    assert provider.token_requests[-1]["scope"] == "a b"


@pytest.mark.parametrize("body", [{"client_id": "only-id"}, {"client_secret": "only-secret"}])
async def test_half_a_client_is_missing_credentials(
    client, vault: FakeVault, provider: MockProvider, body: dict
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-cc", "OAUTH2_CC", client=provider.add_client())
    response = await client.post(
        f"/auth/oauth2-cc/{integration}?public_key={env.public_key}", json=body
    )
    assert response.status == 400
    assert await error_code(response) == "missing_credentials"
    assert provider.token_requests == []


async def test_no_client_anywhere_is_missing_credentials(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-cc", "OAUTH2_CC")
    response = await client.post(
        f"/auth/oauth2-cc/{integration}?public_key={env.public_key}", json={}
    )
    assert response.status == 400
    assert await error_code(response) == "missing_credentials"


async def test_refused_client_is_token_exchange_failed_and_stores_nothing(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-cc", "OAUTH2_CC", client=provider.add_client())
    response = await client.post(
        f"/auth/oauth2-cc/{integration}?public_key={env.public_key}",
        json={"client_id": "stranger", "client_secret": "nope"},
    )
    assert response.status == 502
    assert await error_code(response) == "token_exchange_failed"
    assert vault.stored == []


async def test_oauth2_integration_is_invalid_auth_mode(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env, integration = mock_oauth2_integration(vault, provider)
    response = await client.post(
        f"/auth/oauth2-cc/{integration}?public_key={env.public_key}", json={}
    )
    assert response.status == 400
    assert await error_code(response) == "invalid_auth_mode"
