"""A new key version is added while sessions are open and OAuth flows are under way.

`client` is a gateway on key ring `1`; `rotated` is one rolled onto `1,2` on the same
database (and the vault is rolled with it), as during a key rotation.
"""

from __future__ import annotations

import pytest

from terapi_common.crypto import KeyRing, generate_key
from tests.integration.gateway.conftest import (
    FakeVault,
    error_code,
    gateway_client,
    open_session,
)
from tests.integration.gateway.oauth_steps import (
    at_provider,
    begin,
    path_of,
    result_of,
    same_browser,
)
from tests.support.mock_provider import MockProvider

pytestmark = pytest.mark.integration

OLD_KEY, NEW_KEY = generate_key(), generate_key()
ROTATED = KeyRing.from_spec(f"1:{OLD_KEY},2:{NEW_KEY}")


@pytest.fixture
def key_ring_spec() -> str:
    """What `client` and the fake vault start on: the old key alone."""
    return f"1:{OLD_KEY}"


@pytest.fixture
async def rotated(aiohttp_client, database_url, bus, clock, vault, providers_path):
    return await gateway_client(aiohttp_client, database_url, bus, ROTATED, clock,
                                 providers_path)


@pytest.fixture
async def new_key_only(aiohttp_client, database_url, bus, clock, vault, providers_path):
    """A gateway after version 1 was removed."""
    return await gateway_client(aiohttp_client, database_url, bus,
                                 KeyRing.from_spec(f"2:{NEW_KEY}"), clock, providers_path)


async def connect_api_key(gateway, integration: str, token: str):
    return await gateway.post(
        f"/auth/api-key/{integration}?connect_session_token={token}", json={"api_key": "k"}
    )


async def test_session_opened_before_a_key_was_added_is_accepted_after(
    client, rotated, vault: FakeVault
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    token = await open_session(client, env)
    vault.key_ring = ROTATED

    first = await connect_api_key(rotated, integration, token)
    again = await connect_api_key(rotated, integration, token)  # now from its cache

    assert (first.status, again.status) == (200, 200), await first.text()
    assert [command.connection_id for command, _ in vault.stored] == [
        (await first.json())["connection_id"], (await again.json())["connection_id"]]


async def test_session_opened_after_a_key_was_added_outlives_the_old_key(
    rotated, new_key_only, vault: FakeVault
) -> None:
    vault.key_ring = ROTATED
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    token = await open_session(rotated, env)

    response = await connect_api_key(new_key_only, integration, token)

    assert response.status == 200, await response.text()


async def test_session_opened_under_a_removed_key_is_refused(
    client, new_key_only, vault: FakeVault
) -> None:
    """Why the old version stays listed until every session opened under it has expired."""
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    token = await open_session(client, env)

    response = await connect_api_key(new_key_only, integration, token)

    assert response.status == 401
    assert await error_code(response) == "invalid_connect_session_token"


@pytest.mark.parametrize(("provider_name", "auth_mode"),
                         [("mock-oauth2", "OAUTH2"), ("mock-oauth1", "OAUTH1")])
async def test_flow_started_before_a_key_was_added_finishes_after(
    client, rotated, vault: FakeVault, provider: MockProvider, provider_name: str,
    auth_mode: str,
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, provider_name, auth_mode,
                                        client=provider.add_client())
    params, started = await begin(client, env, integration)
    assert started.status == 302, await started.text()
    callback_url = await at_provider(started.headers["Location"])
    vault.key_ring = ROTATED
    same_browser(client, rotated)

    page = await rotated.get(path_of(callback_url), allow_redirects=False)

    assert page.status == 200, await page.text()
    assert (await result_of(rotated, params["flow_id"]))["status"] == "success"
    (command, credentials), = vault.stored
    assert command.auth_mode == auth_mode
    if auth_mode == "OAUTH2":
        assert credentials["access_token"] in provider.access_tokens
    else:
        assert provider.oauth1_access[credentials["oauth_token"]] == (
            credentials["oauth_token_secret"])
