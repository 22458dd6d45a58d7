"""GET /oauth/connect and /oauth/callback for OAuth 2, against the local provider."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest

from terapi_common.clock import FakeClock
from tests.integration.gateway.conftest import FakeVault
from tests.integration.gateway.oauth_steps import (
    at_provider,
    begin,
    connect,
    connect_params,
    mock_oauth2_integration,
    path_of,
    query_of,
    result_of,
    run,
)
from tests.support.mock_provider import MockProvider

pytestmark = pytest.mark.integration


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def test_token_answer_flushed_in_pieces_is_read_whole(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    provider.behaviour.token_in_pieces = True
    env, integration = mock_oauth2_integration(vault, provider)
    flow = await run(client, env, integration)
    assert flow.page.status == 200, await flow.page.text()
    assert vault.stored[0][1]["access_token"] in provider.access_tokens


async def test_full_flow_stores_normalized_tokens_for_the_connection(
    client, vault: FakeVault, provider: MockProvider, clock: FakeClock
) -> None:
    env, integration = mock_oauth2_integration(vault, provider)
    flow = await run(client, env, integration, connection_id="acme-1")
    assert flow.page.status == 200
    command, credentials = vault.stored[0]
    assert (command.auth_mode, command.connection_id) == ("OAUTH2", "acme-1")
    assert credentials["access_token"] in provider.access_tokens
    assert credentials["refresh_token"] in provider.refresh_tokens
    assert credentials["token_type"] == "Bearer"
    assert credentials["scopes"] == credentials["requested_scopes"] == ["read", "write"]
    assert credentials["expires_at"] == (clock.now() + timedelta(hours=1)).isoformat()
    assert command.expires_at == clock.now() + timedelta(hours=1)
    assert credentials["raw"]["access_token"] == credentials["access_token"]


async def test_authorization_url_carries_client_redirect_uri_and_default_scopes(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    oauth_client = provider.add_client()
    integration = vault.add_integration(env, "mock-oauth2", "OAUTH2", client=oauth_client)
    flow = await run(client, env, integration)
    sent = provider.authorize_requests[-1]
    assert flow.authorize_url.startswith(f"{provider.base_url}/oauth/authorize?")
    assert (sent["client_id"], sent["response_type"]) == (oauth_client.client_id, "code")
    assert sent["redirect_uri"] == "https://terapi.example.com/oauth/callback"
    assert sent["scope"] == "read write"
    assert len(sent["state"]) >= 43  # 256 random bits, base64url


async def test_integration_scopes_replace_the_providers_defaults(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(
        env, "mock-oauth2", "OAUTH2", client=provider.add_client(), scopes=["profile"]
    )
    await run(client, env, integration)
    assert provider.authorize_requests[-1]["scope"] == "profile"


async def test_custom_callback_url_is_the_redirect_uri(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(
        env, "mock-oauth2", "OAUTH2", client=provider.add_client(),
        callback_url="https://app.example.com/terapi/callback",
    )
    query, started = await begin(client, env, integration)
    back = await at_provider(started.headers["Location"])
    assert back.startswith("https://app.example.com/terapi/callback?")
    # The app's own callback page forwards the query to Terapi's.
    await client.get("/oauth/callback", params=query_of(back))
    assert provider.token_requests[-1]["redirect_uri"] == "https://app.example.com/terapi/callback"
    assert (await result_of(client, query["flow_id"]))["status"] == "success"


async def test_pkce_sends_an_s256_challenge_and_its_verifier(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-pkce", "OAUTH2", client=provider.add_client())
    flow = await run(client, env, integration)
    assert flow.page.status == 200
    authorize, token = provider.authorize_requests[-1], provider.token_requests[-1]
    assert authorize["code_challenge_method"] == "S256"
    assert 43 <= len(token["code_verifier"]) <= 128
    assert authorize["code_challenge"] == s256(token["code_verifier"])
    assert len(vault.stored) == 1


async def test_without_pkce_no_challenge_or_verifier_is_sent(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env, integration = mock_oauth2_integration(vault, provider)
    await run(client, env, integration)
    assert "code_challenge" not in provider.authorize_requests[-1]
    assert "code_verifier" not in provider.token_requests[-1]


async def test_generic_oauth2_takes_urls_and_pkce_from_the_integration(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    config = {"urls": {"authorization_url": f"{provider.base_url}/oauth/authorize",
                       "token_url": f"{provider.base_url}/oauth/token"},
              "pkce": True, "scope_separator": ","}
    integration = vault.add_integration(
        env, "oauth2", "OAUTH2", client=provider.add_client(), provider_config=config,
        scopes=["a", "b"],
    )
    flow = await run(client, env, integration)
    assert flow.page.status == 200
    assert provider.authorize_requests[-1]["scope"] == "a,b"
    assert "code_verifier" in provider.token_requests[-1]


async def test_client_secret_basic_sends_the_client_in_the_header(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-pkce", "OAUTH2", client=provider.add_client())
    await run(client, env, integration)
    assert "client_secret" not in provider.token_requests[-1]
    assert provider.token_headers[-1]["Authorization"].startswith("Basic ")
    assert provider.token_headers[-1]["Accept"] == "application/json"


async def test_connection_config_is_interpolated_into_the_provider_urls(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-tenant", "OAUTH2", client=provider.add_client())
    flow = await run(client, env, integration, params={"subdomain": "acme"})
    assert flow.authorize_url.startswith(f"{provider.base_url}/t/acme/oauth/authorize?")
    assert any(p.startswith("/t/acme/oauth/token") for p in provider.paths)
    assert query_of(flow.authorize_url)["audience"] == "api-acme"
    assert vault.stored[0][0].connection_config == {"subdomain": "acme"}


async def test_captured_values_join_the_connection_config(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    provider.behaviour.extra_token_fields = {"instance_url": "https://eu7.example.com"}
    provider.behaviour.callback_extra_params = {"realmId": "4620816365"}
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-tenant", "OAUTH2", client=provider.add_client())
    await run(client, env, integration, params={"subdomain": "acme"})
    assert vault.stored[0][0].connection_config == {
        "subdomain": "acme", "instance_url": "https://eu7.example.com", "realm_id": "4620816365"
    }


async def test_captured_value_of_the_wrong_shape_is_not_kept(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    provider.behaviour.extra_token_fields = {"instance_url": "https://evil.test/x"}
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-tenant", "OAUTH2", client=provider.add_client())
    await run(client, env, integration, params={"subdomain": "acme"})
    assert vault.stored[0][0].connection_config == {"subdomain": "acme"}


async def test_site_named_by_the_providers_api_joins_the_connection_config(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-sites", "OAUTH2", client=provider.add_client())
    flow = await run(client, env, integration)
    assert flow.page.status == 200
    command, credentials = vault.stored[0]
    assert command.connection_config == {
        "cloud_id": "1324a887-45db-1bf4-1e99-ef0ff456d421", "site_url": "https://acme.example.com"}
    asked = [p for p in provider.paths if p.startswith("/api/accessible-resources")]
    assert asked == ["/api/accessible-resources"]
    assert credentials["access_token"] in provider.access_tokens


@pytest.mark.parametrize("sites", [[], [{"id": "../../admin", "url": "https://acme.example.com"}]],
                         ids=["no-site", "hostile-id"])
async def test_no_usable_site_fails_the_authorization_and_stores_nothing(
    client, vault: FakeVault, provider: MockProvider, sites: list
) -> None:
    provider.behaviour.accessible_sites = sites
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-sites", "OAUTH2", client=provider.add_client())
    flow = await run(client, env, integration)
    outcome = await result_of(client, flow.params["flow_id"])
    assert outcome["status"] == "failed"
    assert outcome["error"]["code"] == "connection_metadata_unavailable"
    assert vault.stored == []


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"subdomain": "evil.com/x"}, "invalid_connection_config"),
        ({"subdomain": "acme", "region": "europe"}, "invalid_connection_config"),
        ({"subdomain": "acme", "color": "red"}, "invalid_connection_config"),
        ({}, "missing_connection_config"),
    ],
)
async def test_bad_connection_config_is_refused_before_any_redirect(
    client, vault: FakeVault, provider: MockProvider, params: dict, code: str
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-tenant", "OAUTH2", client=provider.add_client())
    query = connect_params(env, params=params)
    response = await connect(client, integration, query)
    assert response.status == 400
    assert "Location" not in response.headers
    assert provider.paths == []
    assert (await result_of(client, query["flow_id"]))["error"]["code"] == code


async def test_refusal_names_the_bad_field(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-tenant", "OAUTH2", client=provider.add_client())
    query = connect_params(env, params={"subdomain": "evil.com/x"})
    await connect(client, integration, query)
    error = (await result_of(client, query["flow_id"]))["error"]
    assert "connection_config.subdomain" in error["message"]


async def test_scope_override_is_what_the_provider_sees(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(
        env, "mock-oauth2", "OAUTH2", client=provider.add_client(), scopes=["read"]
    )
    await run(client, env, integration, scopes="admin,audit")
    assert provider.authorize_requests[-1]["scope"] == "admin audit"
    assert vault.stored[0][1]["requested_scopes"] == ["admin", "audit"]


async def test_scopes_follow_the_providers_separator(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-tenant", "OAUTH2", client=provider.add_client())
    await run(client, env, integration, params={"subdomain": "acme"}, scopes="a,b")
    assert provider.authorize_requests[-1]["scope"] == "a,b"
    assert vault.stored[0][1]["scopes"] == ["a", "b"]


async def test_authorization_params_are_passed_to_the_provider(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-tenant", "OAUTH2", client=provider.add_client())
    await run(client, env, integration, params={"subdomain": "acme"},
              authorization_params={"login_hint": "ada@example.com", "prompt": "login"})
    sent = provider.authorize_requests[-1]
    assert sent["login_hint"] == "ada@example.com"
    assert sent["prompt"] == "login"  # the caller's value wins over the provider's default


@pytest.mark.parametrize(
    "extra",
    [
        {"params": "{not json"},
        {"params": "[1, 2]"},
        {"authorization_params": "{oops"},
        {"authorization_params": {"redirect_uri": "https://evil.test/cb"}},
        {"authorization_params": {"state": "mine"}},
        {"authorization_params": {"prompt": 1}},
        {"scopes": "read,,write"},
        {"scopes": "read, write"},
    ],
)
async def test_malformed_request_is_invalid_request_without_redirect(
    client, vault: FakeVault, provider: MockProvider, extra: dict
) -> None:
    env, integration = mock_oauth2_integration(vault, provider)
    query = connect_params(env, **extra)
    response = await connect(client, integration, query)
    assert response.status == 400
    assert (await result_of(client, query["flow_id"]))["error"]["code"] == "invalid_request"
    assert provider.paths == []


async def test_malformed_json_names_the_parameter(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env, integration = mock_oauth2_integration(vault, provider)
    query = connect_params(env, authorization_params="{oops")
    await connect(client, integration, query)
    error = (await result_of(client, query["flow_id"]))["error"]
    assert error["message"].startswith("authorization_params")


async def test_unknown_integration_is_integration_not_found(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    query = connect_params(env)
    response = await connect(client, "nope", query)
    assert response.status == 404
    assert (await result_of(client, query["flow_id"]))["error"]["code"] == "integration_not_found"


async def test_api_key_integration_is_invalid_auth_mode(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    query = connect_params(env)
    response = await connect(client, integration, query)
    assert response.status == 400
    assert (await result_of(client, query["flow_id"]))["error"]["code"] == "invalid_auth_mode"


async def test_integration_without_a_client_is_missing_credentials(
    client, vault: FakeVault
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-oauth2", "OAUTH2")
    query = connect_params(env)
    await connect(client, integration, query)
    assert (await result_of(client, query["flow_id"]))["error"]["code"] == "missing_credentials"


async def test_provider_unknown_to_the_catalog_is_unknown_provider(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "no-such-provider", "OAUTH2",
                                        client=provider.add_client())
    query = connect_params(env)
    await connect(client, integration, query)
    assert (await result_of(client, query["flow_id"]))["error"]["code"] == "unknown_provider"


async def test_denied_consent_is_access_denied_and_stores_nothing(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    provider.behaviour.auto_approve = False
    env, integration = mock_oauth2_integration(vault, provider)
    query, started = await begin(client, env, integration)
    fields = {**query_of(started.headers["Location"]), "decision": "deny"}
    back = await at_provider(f"{provider.base_url}/oauth/authorize/decision", data=fields)
    page = await client.get(path_of(back), allow_redirects=False)
    assert page.status == 403
    assert (await result_of(client, query["flow_id"]))["error"]["code"] == "access_denied"
    assert vault.stored == []


async def test_other_provider_error_is_provider_error_with_its_description(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env, integration = mock_oauth2_integration(vault, provider)
    query, started = await begin(client, env, integration)
    state = query_of(started.headers["Location"])["state"]
    page = await client.get("/oauth/callback", params={
        "state": state, "error": "invalid_scope", "error_description": "scope admin is unknown"})
    assert page.status == 502
    error = (await result_of(client, query["flow_id"]))["error"]
    assert error["code"] == "provider_error"
    assert "invalid_scope: scope admin is unknown" in error["message"]


async def test_callback_without_code_is_provider_error(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env, integration = mock_oauth2_integration(vault, provider)
    query, started = await begin(client, env, integration)
    state = query_of(started.headers["Location"])["state"]
    await client.get("/oauth/callback", params={"state": state})
    assert (await result_of(client, query["flow_id"]))["error"]["code"] == "provider_error"


async def test_replayed_state_is_invalid_state_and_exchanges_nothing(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env, integration = mock_oauth2_integration(vault, provider)
    flow = await run(client, env, integration)
    exchanges = len(provider.token_requests)
    replay = await client.get(path_of(flow.callback_url), allow_redirects=False)
    assert replay.status == 400
    assert "invalid_state" in await replay.text()
    assert len(provider.token_requests) == exchanges
    assert (await result_of(client, flow.flow_id))["status"] == "success"
    assert len(vault.stored) == 1


@pytest.mark.parametrize("query", [{"state": "forged", "code": "c"}, {"code": "c"}, {}])
async def test_unknown_or_missing_state_is_invalid_state(client, query: dict) -> None:
    page = await client.get("/oauth/callback", params=query)
    assert page.status == 400
    text = await page.text()
    assert "invalid_state" in text
    assert "postMessage" not in text  # no flow, so no origin to trust


async def test_state_expires_after_ten_minutes(
    client, vault: FakeVault, provider: MockProvider, clock: FakeClock
) -> None:
    env, integration = mock_oauth2_integration(vault, provider)
    query, started = await begin(client, env, integration)
    back = await at_provider(started.headers["Location"])
    clock.advance(minutes=10)
    page = await client.get(path_of(back), allow_redirects=False)
    assert page.status == 400
    assert (await result_of(client, query["flow_id"]))["error"]["code"] == "state_expired"
    assert provider.token_requests == []
    assert vault.stored == []


async def test_state_still_works_just_before_ten_minutes(
    client, vault: FakeVault, provider: MockProvider, clock: FakeClock
) -> None:
    env, integration = mock_oauth2_integration(vault, provider)
    query, started = await begin(client, env, integration)
    back = await at_provider(started.headers["Location"])
    clock.advance(minutes=9, seconds=59)
    await client.get(path_of(back), allow_redirects=False)
    assert (await result_of(client, query["flow_id"]))["status"] == "success"


async def test_token_endpoint_error_is_token_exchange_failed(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    provider.behaviour.token_error = "invalid_grant"
    env, integration = mock_oauth2_integration(vault, provider)
    flow = await run(client, env, integration)
    assert flow.page.status == 502
    error = (await result_of(client, flow.flow_id))["error"]
    assert error["code"] == "token_exchange_failed"
    assert "invalid_grant" in error["message"]
    assert vault.stored == []


async def test_ok_false_in_a_200_token_answer_is_token_exchange_failed(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    """Slack refuses with HTTP 200 and {"ok": false}; nothing is stored from such an answer."""
    provider.behaviour.extra_token_fields = {"ok": False}
    env, integration = mock_oauth2_integration(vault, provider)
    flow = await run(client, env, integration)
    assert flow.page.status == 502
    error = (await result_of(client, flow.flow_id))["error"]
    assert (error["code"], error["message"]) == (
        "token_exchange_failed", "the provider refused the token request (HTTP 200)")
    assert vault.stored == []


async def test_wrong_client_secret_is_token_exchange_failed(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    oauth_client = provider.add_client()
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-oauth2", "OAUTH2", client=oauth_client)
    oauth_client.client_secret = "rotated-at-the-provider"
    flow = await run(client, env, integration)
    error = (await result_of(client, flow.flow_id))["error"]
    assert (error["code"], "invalid_client" in error["message"]) == ("token_exchange_failed", True)


async def test_malformed_token_response_is_invalid_token_response(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    provider.behaviour.malformed_token_response = True
    env, integration = mock_oauth2_integration(vault, provider)
    flow = await run(client, env, integration)
    assert (await result_of(client, flow.flow_id))["error"]["code"] == "invalid_token_response"
    assert vault.stored == []


async def test_token_response_without_access_token_is_invalid_token_response(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    provider.behaviour.extra_token_fields = {"access_token": ""}
    env, integration = mock_oauth2_integration(vault, provider)
    flow = await run(client, env, integration)
    assert (await result_of(client, flow.flow_id))["error"]["code"] == "invalid_token_response"


async def test_generic_oauth2_without_urls_is_invalid_provider_config(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "oauth2", "OAUTH2", client=provider.add_client())
    query = connect_params(env)
    response = await connect(client, integration, query)
    assert response.status == 400
    assert (await result_of(client, query["flow_id"]))["error"]["code"] == "invalid_provider_config"


async def test_head_request_cannot_use_up_a_state(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env, integration = mock_oauth2_integration(vault, provider)
    query, started = await begin(client, env, integration)
    back = await at_provider(started.headers["Location"])
    assert (await client.head(path_of(back))).status == 405
    await client.get(path_of(back), allow_redirects=False)
    assert (await result_of(client, query["flow_id"]))["status"] == "success"
