"""An OAuth flow finishes only in the browser that started it (the flow cookie)."""

from __future__ import annotations

import pytest

from tests.integration.gateway.conftest import FakeVault
from tests.integration.gateway.oauth_steps import (
    at_provider,
    begin,
    path_of,
    result_of,
)
from tests.support.mock_provider import MockProvider

pytestmark = pytest.mark.integration
MODES = pytest.mark.parametrize(("provider_name", "auth_mode"),
                                [("mock-oauth2", "OAUTH2"), ("mock-oauth1", "OAUTH1")])


@MODES
async def test_callback_in_another_browser_stores_nothing(
    client, other_replica, vault: FakeVault, provider: MockProvider, provider_name: str,
    auth_mode: str,
) -> None:
    """An attacker's flow link, approved by a victim, must not land the victim's tokens."""
    env = vault.add_environment()
    integration = vault.add_integration(env, provider_name, auth_mode,
                                        client=provider.add_client())
    params, started = await begin(client, env, integration, connection_id="attacker-conn",
                                  return_url="https://app.example.com/done")
    callback_url = await at_provider(started.headers["Location"])

    victim = await other_replica.get(path_of(callback_url), allow_redirects=False)

    assert victim.status == 403
    assert "Location" not in victim.headers
    assert "flow_not_started_here" in await victim.text()
    assert vault.stored == []
    result = await result_of(client, params["flow_id"])
    assert result["error"]["code"] == "flow_not_started_here"


async def test_callback_with_a_forged_cookie_stores_nothing(
    client, other_replica, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-oauth2", "OAUTH2",
                                        client=provider.add_client())
    _, started = await begin(client, env, integration)
    callback_url = await at_provider(started.headers["Location"])
    other_replica.session.cookie_jar.update_cookies(
        {"__Host-terapi_flow": "A" * 43}, other_replica.make_url("/"))

    page = await other_replica.get(path_of(callback_url), allow_redirects=False)

    assert page.status == 403
    assert vault.stored == []


async def test_flow_cookie_is_host_only_http_only_and_lax(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-oauth2", "OAUTH2",
                                        client=provider.add_client())
    _, started = await begin(client, env, integration)
    cookie = started.cookies["__Host-terapi_flow"]
    assert (cookie["path"], cookie["samesite"], cookie["domain"]) == ("/", "Lax", "")
    assert cookie["httponly"] and cookie["secure"]


async def test_flows_started_side_by_side_in_one_browser_both_finish(
    client, vault: FakeVault, provider: MockProvider
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "mock-oauth2", "OAUTH2",
                                        client=provider.add_client())
    first_params, first = await begin(client, env, integration, connection_id="c-1")
    second_params, second = await begin(client, env, integration, connection_id="c-2")

    for started in (second, first):
        callback_url = await at_provider(started.headers["Location"])
        page = await client.get(path_of(callback_url), allow_redirects=False)
        assert page.status == 200, await page.text()

    for params in (first_params, second_params):
        assert (await result_of(client, params["flow_id"]))["status"] == "success"
    assert sorted(command.connection_id for command, _ in vault.stored) == ["c-1", "c-2"]


async def test_refused_start_sets_no_cookie(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    _, started = await begin(client, env, "no-such-integration")
    assert started.status == 404
    assert "__Host-terapi_flow" not in started.cookies
