"""OAuth 1.0a (Trello-style): request token, consent, access token, against the local provider."""

from __future__ import annotations

import pytest

from tests.integration.gateway.conftest import FakeVault
from tests.integration.gateway.oauth_steps import (
    at_provider,
    begin,
    connect,
    connect_params,
    path_of,
    query_of,
    result_of,
    run,
)
from tests.support.mock_provider import MockProvider

pytestmark = pytest.mark.integration


async def test_full_flow_stores_the_token_and_its_secret(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-oauth1", "OAUTH1", client=provider.add_client())
    flow = await run(client, env, integration, connection_id="board-1")
    assert (await result_of(client, flow.flow_id))["status"] == "success"
    command, credentials = vault.stored[0]
    assert (command.auth_mode, command.connection_id) == ("OAUTH1", "board-1")
    assert credentials["type"] == "OAUTH1"
    assert provider.oauth1_access[credentials["oauth_token"]] == credentials["oauth_token_secret"]
    assert credentials["raw"]["oauth_token"] == credentials["oauth_token"]


async def test_request_token_names_the_callback_and_the_consent_gets_the_params(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-oauth1", "OAUTH1", client=provider.add_client())
    query = connect_params(env, authorization_params={"expiration": "30days"})
    started = await connect(client, integration, query)
    sent = query_of(started.headers["Location"])
    assert started.headers["Location"].startswith(f"{provider.base_url}/oauth1/authorize?")
    pending = provider.request_tokens[sent["oauth_token"]]
    assert pending["callback"] == "https://terapi.example.com/oauth/callback"
    assert (sent["name"], sent["expiration"], sent["scope"]) == ("Terapi tests", "30days", "read")


async def test_denied_consent_is_access_denied(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    provider.behaviour.auto_approve = False
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-oauth1", "OAUTH1", client=provider.add_client())
    query, started = await begin(client, env, integration)
    token = query_of(started.headers["Location"])["oauth_token"]
    back = await at_provider(f"{provider.base_url}/oauth1/authorize/decision",
                             data={"oauth_token": token, "decision": "deny"})
    page = await client.get(path_of(back), allow_redirects=False)
    assert page.status == 403
    assert (await result_of(client, query["flow_id"]))["error"]["code"] == "access_denied"
    assert vault.stored == []


async def test_replayed_callback_is_invalid_state(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-oauth1", "OAUTH1", client=provider.add_client())
    flow = await run(client, env, integration)
    replay = await client.get(path_of(flow.callback_url), allow_redirects=False)
    assert replay.status == 400
    assert "invalid_state" in await replay.text()
    assert len(vault.stored) == 1


async def test_refused_request_token_fails_before_any_redirect(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    oauth_client = provider.add_client()
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-oauth1", "OAUTH1", client=oauth_client)
    oauth_client.client_secret = "not-what-terapi-signs-with"
    query = connect_params(env)
    response = await connect(client, integration, query)
    assert response.status == 502
    error = (await result_of(client, query["flow_id"]))["error"]
    assert error["code"] == "token_exchange_failed"
    assert "signature_invalid" in error["message"]


async def test_wrong_verifier_is_token_exchange_failed(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-oauth1", "OAUTH1", client=provider.add_client())
    query, started = await begin(client, env, integration)
    back = query_of(await at_provider(started.headers["Location"]))
    await client.get("/oauth/callback", params={**back, "oauth_verifier": "guessed"})
    assert (await result_of(client, query["flow_id"]))["error"]["code"] == "token_exchange_failed"
