"""Integrations through the HTTP API: create, read, change, delete, and every refusal."""

from __future__ import annotations

import asyncio

import pytest

from terapi_common.events import ConnectionDeleted, IntegrationChanged
from terapi_common.memory_bus import MemoryBus
from tests.conftest import unique
from tests.integration.vault.conftest import (
    OAUTH2_CREDENTIALS,
    PUBLIC_URL,
    Api,
    Env,
    collect,
    store_connection,
    wait_for,
)

pytestmark = pytest.mark.integration

GENERIC_URLS = {
    "authorization_url": "https://idp.example.com/authorize",
    "token_url": "https://idp.example.com/token",
}


async def test_api_key_integration_is_created(api: Api) -> None:
    integration_id = unique("int")
    status, body = await api.call(
        "POST", "/integrations", json={"integration_id": integration_id, "provider": "api-key"}
    )
    assert status == 201
    assert body["integration_id"] == integration_id
    assert (body["provider"], body["auth_mode"], body["display_name"]) == (
        "api-key", "API_KEY", "Any API (API key)"
    )
    assert (body["credentials"], body["scopes"], body["provider_config"]) == (None, [], {})
    assert body["callback_url"] == f"{PUBLIC_URL}/oauth/callback"
    assert body["created_at"] and body["updated_at"]


async def test_oauth_client_secret_is_shown_masked(api: Api) -> None:
    status, body = await api.call("POST", "/integrations", json={
        "integration_id": unique("int"), "provider": "test-oauth2",
        "credentials": OAUTH2_CREDENTIALS,
    })
    assert status == 201
    assert body["credentials"] == {
        "type": "OAUTH2", "client_id": "client-123", "client_secret": "****abcd"
    }
    assert body["scopes"] == ["read", "write"]


async def test_oauth_client_secret_is_not_stored_in_plaintext(api: Api, pool) -> None:
    integration_id = await api.create_integration("test-oauth2", credentials=OAUTH2_CREDENTIALS)
    row = await pool.fetchrow(
        "SELECT * FROM vault.integrations WHERE environment_id = $1 AND integration_id = $2",
        api.env.id, integration_id,
    )
    assert b"s3cr3t-client-abcd" not in bytes(row["client_secret_encrypted"])
    assert "s3cr3t-client-abcd" not in str(dict(row))


async def test_generic_oauth2_integration_stores_its_urls(api: Api) -> None:
    status, body = await api.call("POST", "/integrations", json={
        "integration_id": unique("int"), "provider": "oauth2",
        "credentials": {**OAUTH2_CREDENTIALS, "urls": GENERIC_URLS, "pkce": True,
                        "scope_separator": ","},
    })
    assert status == 201, body
    assert body["provider_config"] == {
        "urls": GENERIC_URLS, "pkce": True, "scope_separator": ",",
    }


async def test_generic_oauth2_integration_without_urls_is_refused(api: Api) -> None:
    status, body = await api.call("POST", "/integrations", json={
        "integration_id": unique("int"), "provider": "oauth2", "credentials": OAUTH2_CREDENTIALS,
    })
    assert status == 400
    assert body["error"]["code"] == "invalid_provider_config"


async def test_provider_config_for_a_non_oauth2_provider_is_refused(api: Api) -> None:
    status, body = await api.call("POST", "/integrations", json={
        "integration_id": unique("int"), "provider": "test-oauth1",
        "credentials": {**OAUTH2_CREDENTIALS, "type": "OAUTH1"}, "provider_config": {"pkce": True},
    })
    assert status == 400
    assert body["error"]["code"] == "invalid_provider_config"


async def test_unknown_provider_is_refused(api: Api) -> None:
    status, body = await api.call(
        "POST", "/integrations", json={"integration_id": unique("int"), "provider": "nope"}
    )
    assert status == 400
    assert body["error"]["code"] == "unknown_provider"


async def test_duplicate_integration_id_is_a_conflict(api: Api) -> None:
    integration_id = await api.create_integration("api-key")
    status, body = await api.call(
        "POST", "/integrations", json={"integration_id": integration_id, "provider": "basic"}
    )
    assert status == 409
    assert body["error"]["code"] == "integration_already_exists"


@pytest.mark.parametrize("integration_id", ["", "has space", "a/b", "x" * 101])
async def test_malformed_integration_id_is_refused(api: Api, integration_id: str) -> None:
    status, body = await api.call(
        "POST", "/integrations", json={"integration_id": integration_id, "provider": "api-key"}
    )
    assert status == 400
    assert body["error"]["code"] == "invalid_request"
    assert "integration_id" in body["error"]["message"]


async def test_oauth_provider_without_credentials_is_refused(api: Api) -> None:
    status, body = await api.call(
        "POST", "/integrations", json={"integration_id": unique("int"), "provider": "test-oauth2"}
    )
    assert status == 400
    assert body["error"]["code"] == "credentials_required"


async def test_client_credentials_for_an_api_key_provider_are_refused(api: Api) -> None:
    status, body = await api.call("POST", "/integrations", json={
        "integration_id": unique("int"), "provider": "api-key", "credentials": OAUTH2_CREDENTIALS,
    })
    assert status == 400
    assert body["error"]["code"] == "invalid_credentials"


async def test_credentials_of_another_oauth_type_are_refused(api: Api) -> None:
    status, body = await api.call("POST", "/integrations", json={
        "integration_id": unique("int"), "provider": "test-oauth2",
        "credentials": {**OAUTH2_CREDENTIALS, "type": "OAUTH1"},
    })
    assert status == 400
    assert body["error"]["code"] == "invalid_credentials"


async def test_unknown_body_fields_are_named(api: Api) -> None:
    status, body = await api.call("POST", "/integrations", json={
        "integration_id": unique("int"), "provider": "api-key", "colour": "red", "size": 1,
    })
    assert status == 400
    assert "colour, size" in body["error"]["message"]


async def test_integrations_are_listed(api: Api) -> None:
    first = await api.create_integration("api-key")
    second = await api.create_integration("test-oauth2", credentials=OAUTH2_CREDENTIALS)
    status, body = await api.call("GET", "/integrations")
    assert status == 200
    assert [i["integration_id"] for i in body["data"]] == [first, second]
    assert body["data"][1]["credentials"]["client_secret"] == "****abcd"


async def test_integration_is_read_by_id(api: Api) -> None:
    integration_id = await api.create_integration("basic")
    status, body = await api.call("GET", f"/integrations/{integration_id}")
    assert status == 200
    assert (body["integration_id"], body["auth_mode"]) == (integration_id, "BASIC")


async def test_unknown_integration_is_not_found(api: Api) -> None:
    status, body = await api.call("GET", "/integrations/nope")
    assert status == 404
    assert body["error"]["code"] == "integration_not_found"


async def test_integrations_of_another_environment_are_invisible(
    api: Api, client, pool, key_ring
) -> None:
    from tests.integration.vault.conftest import new_env

    integration_id = await api.create_integration("api-key")
    other = Api(client, await new_env(pool, key_ring))
    status, body = await other.call("GET", f"/integrations/{integration_id}")
    assert status == 404
    assert (await other.call("GET", "/integrations"))[1]["data"] == []


async def test_callback_url_follows_the_environment_setting(api: Api) -> None:
    await api.call("PATCH", "/environment", json={"callback_url": "https://app.test/cb"})
    integration_id = await api.create_integration("api-key")
    status, body = await api.call("GET", f"/integrations/{integration_id}")
    assert body["callback_url"] == "https://app.test/cb"


async def test_patch_changes_scopes_and_client_secret(api: Api) -> None:
    integration_id = await api.create_integration("test-oauth2", credentials=OAUTH2_CREDENTIALS)
    status, body = await api.call("PATCH", f"/integrations/{integration_id}", json={
        "scopes": ["admin"], "credentials": {"client_secret": "another-secret-wxyz"},
    })
    assert status == 200, body
    assert body["scopes"] == ["admin"]
    assert body["credentials"] == {
        "type": "OAUTH2", "client_id": "client-123", "client_secret": "****wxyz"
    }
    assert (await api.call("GET", f"/integrations/{integration_id}"))[1] == body


async def test_patches_at_the_same_time_both_land(api: Api) -> None:
    """One admin rotates the client secret while another changes the scopes."""
    integration_id = await api.create_integration("test-oauth2", credentials=OAUTH2_CREDENTIALS)
    path = f"/integrations/{integration_id}"
    for round_number in range(5):
        scopes = [f"scope-{round_number}"]
        secret = f"rotated-secret-{round_number:04d}"
        answers = await asyncio.gather(
            api.call("PATCH", path, json={"scopes": scopes}),
            api.call("PATCH", path, json={"credentials": {"client_secret": secret}}),
        )
        assert [status for status, _ in answers] == [200, 200], answers
        body = (await api.call("GET", path))[1]
        assert body["scopes"] == scopes
        assert body["credentials"]["client_secret"] == f"****{secret[-4:]}"


async def test_patch_changes_provider_config(api: Api) -> None:
    integration_id = await api.create_integration(
        "oauth2", credentials={**OAUTH2_CREDENTIALS, "urls": GENERIC_URLS}
    )
    status, body = await api.call(
        "PATCH", f"/integrations/{integration_id}", json={"provider_config": {"pkce": True}}
    )
    assert status == 200, body
    assert body["provider_config"]["pkce"] is True
    assert body["provider_config"]["urls"]["token_url"] == GENERIC_URLS["token_url"]


async def test_failed_patch_leaves_the_integration_unchanged(api: Api) -> None:
    integration_id = await api.create_integration("test-oauth2", credentials=OAUTH2_CREDENTIALS)
    _, before = await api.call("GET", f"/integrations/{integration_id}")
    status, body = await api.call("PATCH", f"/integrations/{integration_id}", json={
        "scopes": ["new"], "credentials": {"type": "OAUTH1"},
    })
    assert status == 400
    assert body["error"]["code"] == "invalid_credentials"
    assert (await api.call("GET", f"/integrations/{integration_id}"))[1] == before


async def test_patch_with_a_bad_field_is_refused(api: Api) -> None:
    integration_id = await api.create_integration("test-oauth2", credentials=OAUTH2_CREDENTIALS)
    status, body = await api.call(
        "PATCH", f"/integrations/{integration_id}", json={"scopes": "not a list"}
    )
    assert status == 400
    assert body["error"]["code"] == "invalid_request"
    assert "scopes" in body["error"]["message"]


async def test_patch_of_unknown_integration_is_not_found(api: Api) -> None:
    status, body = await api.call("PATCH", "/integrations/nope", json={"scopes": []})
    assert status == 404
    assert body["error"]["code"] == "integration_not_found"


async def test_delete_removes_the_integration_and_tells_the_caches(
    api: Api, bus: MemoryBus
) -> None:
    changes = await collect(bus, IntegrationChanged)
    integration_id = await api.create_integration("api-key")
    assert (await api.call("DELETE", f"/integrations/{integration_id}"))[0] == 204
    assert (await api.call("GET", f"/integrations/{integration_id}"))[0] == 404
    # No connection went with it, and gateways still forget what they cached of it.
    await wait_for(lambda: any(c.integration_id == integration_id and c.change == "deleted"
                               for c in changes))


async def test_delete_removes_and_announces_its_connections(
    api: Api, bus: MemoryBus, env: Env, key_ring
) -> None:
    seen = await collect(bus, ConnectionDeleted)
    integration_id = await api.create_integration("api-key")
    for connection_id in ("c-1", "c-2"):
        await store_connection(bus, key_ring, env, integration_id, connection_id)
    assert (await api.call("DELETE", f"/integrations/{integration_id}"))[0] == 204
    await wait_for(lambda: len(seen) == 2)
    assert {e.connection_id for e in seen} == {"c-1", "c-2"}
    assert all(e.integration_id == integration_id and e.environment == env.name for e in seen)
    assert (await api.call("GET", "/connections/c-1"))[0] == 404


async def test_delete_of_unknown_integration_is_not_found(api: Api) -> None:
    status, body = await api.call("DELETE", "/integrations/nope")
    assert status == 404
    assert body["error"]["code"] == "integration_not_found"


async def test_unreadable_client_secret_spoils_only_its_own_integration(api: Api, pool) -> None:
    source = await api.create_integration("test-oauth2", credentials=OAUTH2_CREDENTIALS)
    target = await api.create_integration("test-oauth2", credentials=OAUTH2_CREDENTIALS)
    await pool.execute(
        "UPDATE vault.integrations SET client_secret_encrypted = (SELECT client_secret_encrypted "
        "FROM vault.integrations WHERE environment_id = $1 AND integration_id = $2) "
        "WHERE environment_id = $1 AND integration_id = $3",
        api.env.id, source, target,
    )
    status, body = await api.call("GET", f"/integrations/{target}")
    assert (status, body["error"]["code"]) == (409, "credentials_unreadable")
    status, listed = await api.call("GET", "/integrations")
    secrets = {i["integration_id"]: i["credentials"]["client_secret"] for i in listed["data"]}
    assert (status, secrets) == (200, {source: "****abcd", target: None})


async def test_unreadable_client_secret_can_be_replaced(api: Api, pool) -> None:
    integration_id = await api.create_integration("test-oauth2", credentials=OAUTH2_CREDENTIALS)
    await pool.execute(
        "UPDATE vault.integrations SET client_secret_encrypted = '\\x01'::bytea "
        "WHERE environment_id = $1 AND integration_id = $2", api.env.id, integration_id,
    )
    status, body = await api.call("PATCH", f"/integrations/{integration_id}", json={
        "credentials": {"client_secret": "replacement-secret-wxyz"},
    })
    assert (status, body["credentials"]["client_secret"]) == (200, "****wxyz")
