"""GET /connect/integrations[/{id}]: what the SDK and the connect page may show; no secret."""

from __future__ import annotations

import pytest

from tests.integration.gateway.conftest import FakeVault, error_code, open_session
from tests.support.mock_provider import MockProvider

pytestmark = pytest.mark.integration


async def test_integration_view_lists_the_fields_to_fill_in(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    oauth_client = provider.add_client()
    integration = vault.add_integration(env, "mock-tenant", "OAUTH2", client=oauth_client)
    response = await client.get(
        f"/connect/integrations/{integration}", params={"public_key": env.public_key}
    )
    assert response.status == 200
    view = await response.json()
    assert (view["integration_id"], view["provider"], view["auth_mode"]) == (
        integration, "mock-tenant", "OAUTH2"
    )
    assert view["display_name"] == "Mock tenant OAuth 2"
    assert set(view["connection_config"]) == {"subdomain", "region"}  # captured ones are not asked
    assert view["connection_config"]["subdomain"] == {
        "title": "Subdomain", "description": "The part before .example.com",
        "pattern": "[a-z0-9][a-z0-9-]{0,62}", "example": "acme", "optional": False,
        "secret": False,
    }
    assert view["credentials"] == {}
    assert oauth_client.client_secret not in await response.text()
    assert oauth_client.client_id not in await response.text()


async def test_api_key_integration_lists_its_credentials(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-key", "API_KEY", display_name="Our key API")
    view = await (await client.get(
        f"/connect/integrations/{integration}", params={"public_key": env.public_key}
    )).json()
    assert view["display_name"] == "Our key API"
    assert view["credentials"]["api_key"]["secret"] is True
    assert view["connection_config"]["site"]["optional"] is True  # it has a default


async def test_basic_integration_without_declared_fields_gets_username_and_password(
    client, vault: FakeVault
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-basic", "BASIC")
    view = await (await client.get(
        f"/connect/integrations/{integration}", params={"public_key": env.public_key}
    )).json()
    assert set(view["credentials"]) == {"username", "password"}
    assert view["credentials"]["password"]["optional"] is True


async def test_integration_view_follows_the_sessions_allow_list(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    allowed = vault.add_integration(env, "mock-key", "API_KEY")
    other = vault.add_integration(env, "mock-basic", "BASIC")
    token = await open_session(client, env, allowed_integrations=[allowed])
    ok = await client.get(f"/connect/integrations/{allowed}",
                          params={"connect_session_token": token})
    refused = await client.get(f"/connect/integrations/{other}",
                               params={"connect_session_token": token})
    assert ok.status == 200
    assert refused.status == 403
    assert await error_code(refused) == "integration_not_allowed"


async def test_unknown_integration_view_is_404(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    response = await client.get("/connect/integrations/nope", params={"public_key": env.public_key})
    assert response.status == 404
    assert await error_code(response) == "integration_not_found"


async def test_integration_view_needs_a_token(client) -> None:
    response = await client.get("/connect/integrations/anything")
    assert response.status == 401
    assert await error_code(response) == "missing_auth_token"


async def test_session_lists_its_allowed_integrations(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    allowed = vault.add_integration(env, "mock-key", "API_KEY")
    vault.add_integration(env, "mock-basic", "BASIC")
    token = await open_session(client, env, allowed_integrations=[allowed])
    response = await client.get("/connect/integrations", params={"connect_session_token": token})
    assert [i["integration_id"] for i in (await response.json())["data"]] == [allowed]


async def test_session_without_allow_list_lists_every_integration(
    client, vault: FakeVault
) -> None:
    env = vault.add_environment()
    first = vault.add_integration(env, "mock-key", "API_KEY")
    second = vault.add_integration(env, "mock-basic", "BASIC")
    token = await open_session(client, env)
    response = await client.get("/connect/integrations", params={"connect_session_token": token})
    listed = {i["integration_id"] for i in (await response.json())["data"]}
    assert listed == {first, second}


async def test_listing_needs_a_session_token_not_a_public_key(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    response = await client.get("/connect/integrations", params={"public_key": env.public_key})
    assert response.status == 401
    assert await error_code(response) == "missing_auth_token"


async def test_integration_views_answer_pages_of_any_origin(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-key", "API_KEY")
    response = await client.get(
        f"/connect/integrations/{integration}", params={"public_key": env.public_key},
        headers={"Origin": "https://app.example.com"},
    )
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
