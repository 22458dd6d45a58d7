"""OAuth authorizations across the running services, against the local mock provider."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid

import aiohttp
import pytest
from standardwebhooks.webhooks import Webhook

from tests.e2e.conftest import Receiver
from tests.e2e.oauth_client import (
    bearer,
    browser,
    connect_query,
    create_oauth_integration,
    query_of,
    result,
    run_flow,
    start_flow,
)
from tests.e2e.stack import Stack
from tests.e2e.test_credentials_flow import _stored_row_bytes
from tests.support.mock_provider import Behaviour

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def provider(mock_provider):
    """The mock provider, approving consent at once (no browser here)."""
    mock_provider.provider.behaviour = Behaviour(auto_approve=True)
    return mock_provider.provider


async def _webhooks_to(http: aiohttp.ClientSession, stack: Stack, receiver: Receiver,
                       *, failures: bool = False) -> None:
    async with http.patch(f"{stack.vault}/environment", headers=bearer(stack), json={
        "webhook_url": receiver.url, "send_new_connection_webhooks": True,
        "send_auth_failure_webhooks": failures}) as response:
        assert response.status == 200, await response.text()


async def _connection(http: aiohttp.ClientSession, stack: Stack, integration_id: str,
                      connection_id: str, **params: str) -> dict:
    async with http.get(f"{stack.vault}/connections/{connection_id}", headers=bearer(stack),
                        params={"integration_id": integration_id, **params}) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def _verified_webhook(stack: Stack, receiver: Receiver, connection_id: str) -> dict:
    headers, body = await receiver.wait_for(_webhook(connection_id))
    Webhook(stack.keys["webhook_secret"]).verify(body, headers)
    return json.loads(body)


async def _operation(http: aiohttp.ClientSession, stack: Stack, connection_id: str) -> dict:
    """The finished auth operation of a connection, with its messages."""
    for _ in range(200):
        async with http.get(f"{stack.logs}/logs/operations", headers=bearer(stack),
                            params={"connection_id": connection_id, "type": "auth"}) as response:
            data = (await response.json())["data"]
        if data and data[0]["status"] != "running":
            async with http.get(f"{stack.logs}/logs/operations/{data[0]['id']}",
                                headers=bearer(stack)) as response:
                return await response.json()
        await asyncio.sleep(0.05)
    raise AssertionError(f"no finished operation for {connection_id}")


def _webhook(connection_id: str, *, success: bool = True):
    def matches(_headers, body: bytes) -> bool:
        payload = json.loads(body)
        return payload.get("connection_id") == connection_id and payload["success"] is success

    return matches


async def test_oauth2_flow_with_pkce_stores_working_tokens(stack: Stack, provider,
                                                           receiver: Receiver) -> None:
    client = provider.add_client()
    connection_id = f"oauth-{uuid.uuid4().hex[:6]}"
    async with browser() as http:
        await _webhooks_to(http, stack, receiver)
        integration_id = await create_oauth_integration(http, stack, "mock-oauth2", client,
                                                        scopes=["read", "write"])
        flow = await run_flow(http, stack, integration_id, connection_id)
        assert flow.result == {"status": "success", "integration_id": integration_id,
                               "connection_id": connection_id}
        authorize = provider.authorize_requests[-1]
        assert authorize["code_challenge_method"] == "S256"
        verifier = provider.token_requests[-1]["code_verifier"]
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        assert authorize["code_challenge"] == challenge.rstrip(b"=").decode()
        assert authorize["scope"] == "read write"

        connection = await _connection(http, stack, integration_id, connection_id)
        credentials = connection["credentials"]
        assert credentials["type"] == "OAUTH2"
        assert credentials["access_token"] in provider.access_tokens
        assert "refresh_token" not in credentials
        assert credentials["expires_at"]
        with_refresh = await _connection(http, stack, integration_id, connection_id,
                                         include_refresh_token="true")
        assert with_refresh["credentials"]["refresh_token"] in provider.refresh_tokens

        headers, body = await receiver.wait_for(_webhook(connection_id))
        Webhook(stack.keys["webhook_secret"]).verify(body, headers)
        assert json.loads(body)["auth_mode"] == "OAUTH2"
        operation = json.dumps(await _operation(http, stack, connection_id))
    code = query_of(flow.callback_url or "")["code"]
    for secret in (code, verifier, credentials["access_token"], client.client_secret):
        assert secret not in operation
    stored = await _stored_row_bytes(stack, connection_id)
    assert credentials["access_token"].encode() not in stored
    assert credentials["access_token"] not in stack.output()
    assert verifier not in stack.output()


async def test_oauth2_flow_without_pkce_uses_basic_client_auth(
        stack: Stack, provider, receiver: Receiver) -> None:
    client = provider.add_client()
    connection_id = f"nopkce-{uuid.uuid4().hex[:6]}"
    async with browser() as http:
        await _webhooks_to(http, stack, receiver)
        integration_id = await create_oauth_integration(http, stack, "mock-oauth2-basic-auth",
                                                        client)
        flow = await run_flow(http, stack, integration_id, connection_id)
        await _verified_webhook(stack, receiver, connection_id)
    assert flow.result["status"] == "success"
    assert "code_challenge" not in provider.authorize_requests[-1]
    assert "client_secret" not in provider.token_requests[-1]  # sent in the Basic header


async def test_connection_config_is_interpolated_into_provider_urls(
        stack: Stack, provider, receiver: Receiver) -> None:
    client = provider.add_client()
    connection_id = f"tenant-{uuid.uuid4().hex[:6]}"
    async with browser() as http:
        await _webhooks_to(http, stack, receiver)
        integration_id = await create_oauth_integration(http, stack, "mock-tenant", client)
        flow = await run_flow(http, stack, integration_id, connection_id,
                              params={"subdomain": "acme"})
        assert flow.result["status"] == "success"
        assert "/t/acme/oauth/authorize" in (flow.provider_location or "")
        connection = await _connection(http, stack, integration_id, connection_id)
        await _verified_webhook(stack, receiver, connection_id)
    assert connection["connection_config"]["subdomain"] == "acme"


async def test_hostile_connection_config_is_refused_before_any_redirect(stack: Stack,
                                                                        provider) -> None:
    client = provider.add_client()
    async with browser() as http:
        integration_id = await create_oauth_integration(http, stack, "mock-tenant", client)
        flow_id = str(uuid.uuid4())
        before = len(provider.authorize_requests)
        response = await start_flow(http, stack, integration_id, connect_query(
            stack, "victim", flow_id, params={"subdomain": "evil.com/x"}))
        assert response.status != 302 and "Location" not in response.headers
        outcome = await result(http, stack, flow_id)
    assert outcome["status"] == "failed"
    assert outcome["error"]["code"] == "invalid_connection_config"
    assert len(provider.authorize_requests) == before


async def test_scope_override_reaches_the_provider(stack: Stack, provider,
                                                   receiver: Receiver) -> None:
    client = provider.add_client()
    connection_id = f"scoped-{uuid.uuid4().hex[:6]}"
    async with browser() as http:
        await _webhooks_to(http, stack, receiver)
        integration_id = await create_oauth_integration(http, stack, "mock-oauth2", client,
                                                        scopes=["read"])
        flow = await run_flow(http, stack, integration_id, connection_id, scopes="admin,audit")
        assert flow.result["status"] == "success"
        connection = await _connection(http, stack, integration_id, connection_id)
        await _verified_webhook(stack, receiver, connection_id)
    assert provider.authorize_requests[-1]["scope"] == "admin audit"
    assert connection["credentials"]["scopes"] == ["admin", "audit"]


async def test_denied_consent_fails_with_access_denied_and_a_failure_webhook(
        stack: Stack, provider, receiver: Receiver) -> None:
    provider.behaviour.auto_approve = False
    client = provider.add_client()
    connection_id = f"denied-{uuid.uuid4().hex[:6]}"
    async with browser() as http:
        await _webhooks_to(http, stack, receiver, failures=True)
        integration_id = await create_oauth_integration(http, stack, "mock-oauth2", client)
        flow_id = str(uuid.uuid4())
        response = await start_flow(http, stack, integration_id,
                                    connect_query(stack, connection_id, flow_id))
        authorize_url = response.headers["Location"]
        fields = query_of(authorize_url)
        denied = await http.post(f"{authorize_url.split('/oauth/authorize')[0]}"
                                 "/oauth/authorize/decision",
                                 data={**fields, "decision": "deny"}, allow_redirects=False)
        callback = await http.get(denied.headers["Location"], allow_redirects=False)
        assert "access_denied" in await callback.text()
        outcome = await result(http, stack, flow_id)
        headers, body = await receiver.wait_for(_webhook(connection_id, success=False))
    assert outcome["status"] == "failed" and outcome["error"]["code"] == "access_denied"
    Webhook(stack.keys["webhook_secret"]).verify(body, headers)
    async with browser() as http:
        operation = await _operation(http, stack, connection_id)
    assert operation["status"] == "failed" and operation["error"]["code"] == "access_denied"
    assert json.loads(body)["error"]["code"] == "access_denied"


async def test_refresh_the_provider_refuses_reaches_the_app_as_a_failed_refresh(
        stack: Stack, provider, receiver: Receiver) -> None:
    """The end user revoked access at the provider: the refresher's next refresh is refused
    and the app's backend hears of it by a signed webhook, so it can ask for a reconnect."""
    provider.behaviour.access_token_lifetime = 60  # inside the refresh lead: due at once
    client = provider.add_client()
    connection_id = f"revoked-{uuid.uuid4().hex[:6]}"
    async with browser() as http:
        await _webhooks_to(http, stack, receiver, failures=True)
        integration_id = await create_oauth_integration(http, stack, "mock-oauth2", client)
        flow = await run_flow(http, stack, integration_id, connection_id)
        assert flow.result["status"] == "success"
        provider.behaviour.token_error = "invalid_grant"
        headers, body = await receiver.wait_for(_webhook(connection_id, success=False),
                                                timeout=30)
        for _ in range(100):  # the vault marks the connection as the webhook goes out
            errors = (await _connection(http, stack, integration_id, connection_id))["errors"]
            if errors:
                break
            await asyncio.sleep(0.05)
    assert [(e["type"], e["code"]) for e in errors] == [("refresh", "token_exchange_failed")]
    Webhook(stack.keys["webhook_secret"]).verify(body, headers)
    payload = json.loads(body)
    assert payload["operation"] == "refresh" and payload["auth_mode"] == "OAUTH2"
    assert payload["error"]["code"] == "token_exchange_failed"
    assert provider.token_requests[-1]["grant_type"] == "refresh_token"


async def test_replayed_state_is_refused(stack: Stack, provider) -> None:
    client = provider.add_client()
    connection_id = f"replay-{uuid.uuid4().hex[:6]}"
    async with browser() as http:
        integration_id = await create_oauth_integration(http, stack, "mock-oauth2", client)
        flow = await run_flow(http, stack, integration_id, connection_id)
        assert flow.result["status"] == "success" and flow.callback_url
        exchanges = len(provider.token_requests)
        replay = await http.get(flow.callback_url, allow_redirects=False)
        page = await replay.text()
    assert "invalid_state" in page
    assert len(provider.token_requests) == exchanges  # the code was not exchanged again


async def test_oauth1_flow_stores_token_and_secret(stack: Stack, provider,
                                                   receiver: Receiver) -> None:
    client = provider.add_client()
    connection_id = f"oauth1-{uuid.uuid4().hex[:6]}"
    async with browser() as http:
        await _webhooks_to(http, stack, receiver)
        integration_id = await create_oauth_integration(http, stack, "mock-oauth1", client,
                                                        kind="OAUTH1")
        flow = await run_flow(http, stack, integration_id, connection_id)
        assert flow.result["status"] == "success", flow.page
        connection = await _connection(http, stack, integration_id, connection_id)
        assert (await _verified_webhook(stack, receiver, connection_id))["auth_mode"] == "OAUTH1"
    credentials = connection["credentials"]
    assert credentials["type"] == "OAUTH1"
    assert provider.oauth1_access[credentials["oauth_token"]] == credentials["oauth_token_secret"]


async def test_client_credentials_connection_fetches_a_token(stack: Stack, provider,
                                                             receiver: Receiver) -> None:
    client = provider.add_client()
    connection_id = f"cc-{uuid.uuid4().hex[:6]}"
    async with browser() as http:
        await _webhooks_to(http, stack, receiver)
        integration_id = await create_oauth_integration(http, stack, "mock-cc", client,
                                                        kind="OAUTH2_CC")
        async with http.post(f"{stack.gateway}/auth/oauth2-cc/{integration_id}",
                             params={"connection_id": connection_id,
                                     "public_key": stack.keys["public_key"]},
                             json={}) as response:
            assert response.status == 200, await response.text()
        connection = await _connection(http, stack, integration_id, connection_id)
        headers, body = await receiver.wait_for(_webhook(connection_id))
    assert connection["credentials"]["access_token"] in provider.access_tokens
    Webhook(stack.keys["webhook_secret"]).verify(body, headers)


async def test_deleting_a_connection_revokes_its_tokens_at_the_provider(stack: Stack,
                                                                        provider) -> None:
    client = provider.add_client()
    connection_id = f"revoke-{uuid.uuid4().hex[:6]}"
    async with browser() as http:
        integration_id = await create_oauth_integration(http, stack, "mock-oauth2", client)
        flow = await run_flow(http, stack, integration_id, connection_id)
        assert flow.result["status"] == "success"
        credentials = (await _connection(http, stack, integration_id, connection_id,
                                         include_refresh_token="true"))["credentials"]
        async with http.delete(f"{stack.vault}/connections/{connection_id}",
                               headers=bearer(stack),
                               params={"integration_id": integration_id}) as response:
            assert response.status == 204, await response.text()
        async with http.get(f"{stack.vault}/connections/{connection_id}", headers=bearer(stack),
                            params={"integration_id": integration_id}) as response:
            assert response.status == 404
    for _ in range(200):
        if credentials["refresh_token"] in provider.revoked:
            break
        await asyncio.sleep(0.05)
    assert credentials["refresh_token"] in provider.revoked
    assert credentials["refresh_token"] not in provider.refresh_tokens


async def test_rejected_api_key_fails_the_connection_test_and_stores_nothing(
        stack: Stack, provider) -> None:
    connection_id = f"verified-{uuid.uuid4().hex[:6]}"
    async with browser() as http:
        async with http.post(f"{stack.vault}/integrations", headers=bearer(stack), json={
                "integration_id": connection_id, "provider": "mock-verified-key"}) as response:
            assert response.status == 201, await response.text()
        url = f"{stack.gateway}/auth/api-key/{connection_id}"
        params = {"connection_id": connection_id, "public_key": stack.keys["public_key"]}
        async with http.post(url, params=params, json={"api_key": "bad-key"}) as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "connection_test_failed"
        async with http.get(f"{stack.vault}/connections/{connection_id}",
                            headers=bearer(stack)) as response:
            assert response.status == 404
        async with http.post(url, params=params, json={"api_key": "good-key"}) as response:
            assert response.status == 200, await response.text()
