"""OAuth attempts: who may start them, what the logs service hears, and that no secret leaks."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from terapi_common.events import AuthFailed, EndUser, Event, OperationFinished, OperationStarted
from terapi_common.memory_bus import MemoryBus
from tests.integration.gateway.conftest import FakeVault, open_session, wait_for
from tests.integration.gateway.oauth_steps import (
    begin,
    connect,
    connect_params,
    mock_oauth2_integration,
    query_of,
    result_of,
    run,
)
from tests.support.mock_provider import MockProvider

pytestmark = pytest.mark.integration


def of_type(events: list[Event], kind: type[Event]) -> list:
    return [e for e in events if isinstance(e, kind)]


# ---------------------------------------------------------------- who may start a flow


async def test_connect_session_flow_stamps_its_end_user(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment(connect_sessions_required=True)
    integration = vault.add_integration(env, "mock-oauth2", "OAUTH2", client=provider.add_client())
    token = await open_session(client, env, end_user={"id": "u-3"})
    await run(client, env, integration, public_key=None, connect_session_token=token)
    assert vault.stored[0][0].end_user == EndUser(id="u-3")


async def test_public_key_is_refused_where_sessions_are_required(
    client, vault: FakeVault, provider: MockProvider, bus: MemoryBus
) -> None:
    env = vault.add_environment(connect_sessions_required=True)
    integration = vault.add_integration(env, "mock-oauth2", "OAUTH2", client=provider.add_client())
    query = connect_params(env)
    response = await connect(client, integration, query)
    assert response.status == 403
    assert "connect_session_required" in await response.text()
    assert (await client.get(f"/oauth/result/{query['flow_id']}")).status == 404
    assert provider.paths == []
    assert bus.published["auth.failed"] == 0


async def test_session_opens_only_its_allowed_integrations(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    allowed = vault.add_integration(env, "mock-oauth2", "OAUTH2", client=provider.add_client())
    other = vault.add_integration(env, "mock-oauth2", "OAUTH2", client=provider.add_client())
    token = await open_session(client, env, allowed_integrations=[allowed])
    query = connect_params(env, public_key=None, connect_session_token=token)
    response = await connect(client, other, query)
    assert response.status == 403
    assert (await result_of(client, query["flow_id"]))["error"]["code"] == (
        "integration_not_allowed"
    )


async def test_bad_connection_id_is_refused(client, vault: FakeVault, provider) -> None:
    env, integration = mock_oauth2_integration(vault, provider)
    query = connect_params(env, connection_id="a/b")
    response = await connect(client, integration, query)
    assert response.status == 400
    assert (await result_of(client, query["flow_id"]))["error"]["code"] == "invalid_connection_id"


# ---------------------------------------------------------------- operations


async def test_start_shows_the_operation_running_and_the_callback_finishes_it(
    client, vault: FakeVault, provider: MockProvider, published: list[Event]
) -> None:
    env, integration = mock_oauth2_integration(vault, provider)
    await run(client, env, integration, connection_id="c-1")
    await wait_for(lambda: len(published) == 2)
    [started] = of_type(published, OperationStarted)
    [finished] = of_type(published, OperationFinished)
    assert (started.kind, started.operation, started.auth_mode) == ("auth", "creation", "OAUTH2")
    assert (started.integration_id, started.connection_id) == (integration, "c-1")
    assert started.provider == "mock-oauth2"
    assert finished.operation_id == started.operation_id == vault.stored[0][0].operation_id
    assert finished.status == "success"
    assert finished.messages[-1].message == "credentials stored: connection created"


async def test_failed_callback_publishes_auth_failed_with_the_providers_error(
    client, vault: FakeVault, provider: MockProvider, published: list[Event]
) -> None:
    env, integration = mock_oauth2_integration(vault, provider)
    query, started = await begin(client, env, integration)
    state = query_of(started.headers["Location"])["state"]
    await client.get("/oauth/callback", params={
        "state": state, "error": "temporarily_unavailable", "error_description": "try later"})
    await wait_for(lambda: len(published) == 3)
    [failed] = of_type(published, AuthFailed)
    [finished] = of_type(published, OperationFinished)
    assert failed.error.code == finished.error.code == "provider_error"
    assert (failed.auth_mode, failed.provider) == ("OAUTH2", "mock-oauth2")
    meta = [m.meta for m in finished.messages if m.meta]
    assert meta == [{"provider_error": "temporarily_unavailable",
                     "provider_error_description": "try later"}]


async def test_refusal_after_authentication_publishes_auth_failed(
    client, vault: FakeVault, published: list[Event]
) -> None:
    env = vault.add_environment()
    await connect(client, "nope", connect_params(env))
    await wait_for(lambda: len(published) == 2)
    [failed] = of_type(published, AuthFailed)
    assert failed.error.code == "integration_not_found"
    assert of_type(published, OperationStarted) == []


async def test_no_code_state_verifier_secret_or_token_reaches_logs_or_events(
    client, vault: FakeVault, provider: MockProvider, published: list[Event]
) -> None:
    oauth_client = provider.add_client()
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-pkce", "OAUTH2", client=oauth_client)
    with capture_logs() as logs:
        flow = await run(client, env, integration)
        await wait_for(lambda: len(published) == 2)
    callback = query_of(flow.callback_url)
    token_request = provider.token_requests[-1]
    credentials = vault.stored[0][1]
    secrets = [callback["code"], callback["state"], token_request["code_verifier"],
               oauth_client.client_secret, credentials["access_token"],
               credentials["refresh_token"]]
    text = " ".join([str(logs), *(e.model_dump_json() for e in published)])
    for secret in secrets:
        assert secret not in text
    assert any(entry["event"] == "gateway.auth_attempt" for entry in logs)


async def test_no_oauth1_secret_reaches_logs_or_events(
    client, vault: FakeVault, provider: MockProvider, published: list[Event]
) -> None:
    oauth_client = provider.add_client()
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-oauth1", "OAUTH1", client=oauth_client)
    with capture_logs() as logs:
        flow = await run(client, env, integration)
        await wait_for(lambda: len(published) == 2)
    callback = query_of(flow.callback_url)
    credentials = vault.stored[0][1]
    secrets = [callback["oauth_token"], callback["oauth_verifier"], oauth_client.client_secret,
               credentials["oauth_token"], credentials["oauth_token_secret"]]
    text = " ".join([str(logs), *(e.model_dump_json() for e in published)])
    for secret in secrets:
        assert secret not in text
