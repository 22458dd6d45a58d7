"""Connections through the HTTP API: reading credentials (the hot path), listing, deleting."""

from __future__ import annotations

import pytest

from terapi_common.errors import ForbiddenError
from terapi_common.events import ConnectionDeleted, ConnectionUpdated, EndUser
from terapi_common.memory_bus import MemoryBus
from tests.integration.vault.conftest import Api, Env, collect, store_connection, wait_for

pytestmark = pytest.mark.integration

OAUTH2_TOKENS = {
    "type": "OAUTH2", "access_token": "at-1", "refresh_token": "rt-1",
    "expires_at": "2030-01-01T00:00:00+00:00", "scopes": ["read"],
    "raw": {"access_token": "at-1", "refresh_token": "rt-1", "token_type": "bearer"},
}


async def oauth2_connection(api: Api, bus: MemoryBus, env: Env, key_ring) -> str:
    from tests.integration.vault.conftest import OAUTH2_CREDENTIALS

    integration_id = await api.create_integration("test-oauth2", credentials=OAUTH2_CREDENTIALS)
    await store_connection(
        bus, key_ring, env, integration_id, "oauth-conn", auth_mode="OAUTH2",
        credentials=OAUTH2_TOKENS,
    )
    return integration_id


async def test_api_key_connection_is_read_with_its_credentials(
    api: Api, bus: MemoryBus, env: Env, key_ring, api_key_integration: str
) -> None:
    user = EndUser(id="u-1", email="ada@example.com", display_name="Ada")
    await store_connection(
        bus, key_ring, env, api_key_integration, "conn-1", end_user=user,
        credentials={"type": "API_KEY", "api_key": "key-123"},
        connection_config={"subdomain": "acme"},
    )
    status, body = await api.call("GET", "/connections/conn-1")
    assert status == 200
    assert body["credentials"] == {"type": "API_KEY", "api_key": "key-123"}
    assert (body["connection_id"], body["integration_id"], body["provider"]) == (
        "conn-1", api_key_integration, "api-key"
    )
    assert body["environment"] == env.name
    assert body["connection_config"] == {"subdomain": "acme"}
    assert body["end_user"] == {"id": "u-1", "email": "ada@example.com", "display_name": "Ada"}
    assert body["created_at"] and body["updated_at"]


async def test_basic_connection_is_read_with_username_and_password(
    api: Api, bus: MemoryBus, env: Env, key_ring
) -> None:
    integration_id = await api.create_integration("basic")
    await store_connection(
        bus, key_ring, env, integration_id, "conn-b", auth_mode="BASIC",
        credentials={"type": "BASIC", "username": "ada", "password": "pw"},
    )
    status, body = await api.call("GET", "/connections/conn-b")
    assert body["credentials"] == {"type": "BASIC", "username": "ada", "password": "pw"}


async def test_oauth2_refresh_token_is_hidden_by_default(
    api: Api, bus: MemoryBus, env: Env, key_ring
) -> None:
    await oauth2_connection(api, bus, env, key_ring)
    status, body = await api.call("GET", "/connections/oauth-conn")
    assert status == 200
    assert body["credentials"]["access_token"] == "at-1"
    assert "rt-1" not in str(body)


async def test_oauth2_refresh_token_is_shown_when_asked_for(
    api: Api, bus: MemoryBus, env: Env, key_ring
) -> None:
    await oauth2_connection(api, bus, env, key_ring)
    status, body = await api.call(
        "GET", "/connections/oauth-conn", params={"include_refresh_token": "true"}
    )
    assert body["credentials"] == OAUTH2_TOKENS


async def test_unclear_include_refresh_token_is_refused(
    api: Api, bus: MemoryBus, env: Env, key_ring
) -> None:
    await oauth2_connection(api, bus, env, key_ring)
    status, body = await api.call(
        "GET", "/connections/oauth-conn", params={"include_refresh_token": "maybe"}
    )
    assert status == 400
    assert body["error"]["code"] == "invalid_request"


async def test_unknown_connection_is_not_found(api: Api, api_key_integration: str) -> None:
    status, body = await api.call("GET", "/connections/nope")
    assert status == 404
    assert body["error"]["code"] == "connection_not_found"


async def test_connection_under_another_integration_is_not_found(
    api: Api, bus: MemoryBus, env: Env, key_ring, api_key_integration: str
) -> None:
    await store_connection(bus, key_ring, env, api_key_integration, "conn-1")
    other = await api.create_integration("api-key")
    status, body = await api.call(
        "GET", "/connections/conn-1", params={"integration_id": other}
    )
    assert status == 404
    assert body["error"]["code"] == "connection_not_found"


async def test_shared_connection_id_needs_integration_id(
    api: Api, bus: MemoryBus, env: Env, key_ring, api_key_integration: str
) -> None:
    other = await api.create_integration("api-key")
    for integration_id in (api_key_integration, other):
        await store_connection(bus, key_ring, env, integration_id, "shared")
    status, body = await api.call("GET", "/connections/shared")
    assert status == 400
    assert body["error"]["code"] == "integration_id_required"


async def test_integration_id_picks_among_shared_connection_ids(
    api: Api, bus: MemoryBus, env: Env, key_ring, api_key_integration: str
) -> None:
    other = await api.create_integration("api-key")
    await store_connection(bus, key_ring, env, api_key_integration, "shared")
    await store_connection(
        bus, key_ring, env, other, "shared", credentials={"type": "API_KEY", "api_key": "other"}
    )
    status, body = await api.call("GET", "/connections/shared", params={"integration_id": other})
    assert (status, body["credentials"]["api_key"]) == (200, "other")


async def test_stored_row_holds_no_plaintext_credentials(
    api: Api, bus: MemoryBus, env: Env, key_ring, pool, api_key_integration: str
) -> None:
    await store_connection(
        bus, key_ring, env, api_key_integration, "conn-1",
        credentials={"type": "API_KEY", "api_key": "plain-api-key-value"},
    )
    row = await pool.fetchrow(
        "SELECT * FROM vault.connections WHERE environment_id = $1 AND connection_id = $2",
        env.id, "conn-1",
    )
    assert b"plain-api-key-value" not in bytes(row["credentials_encrypted"])
    assert "plain-api-key-value" not in str(dict(row))


async def test_ciphertext_copied_to_another_connection_does_not_decrypt(
    api: Api, bus: MemoryBus, env: Env, key_ring, pool, api_key_integration: str
) -> None:
    for connection_id in ("victim", "attacker"):
        await store_connection(bus, key_ring, env, api_key_integration, connection_id)
    await pool.execute(
        "UPDATE vault.connections SET credentials_encrypted = (SELECT credentials_encrypted "
        "FROM vault.connections WHERE environment_id = $1 AND connection_id = 'victim') "
        "WHERE environment_id = $1 AND connection_id = 'attacker'",
        env.id,
    )
    status, body = await api.call("GET", "/connections/attacker")
    assert status == 409
    assert body["error"]["code"] == "credentials_unreadable"
    assert "k-1" not in str(body) and "tag" not in body["error"]["message"].lower()


async def test_connections_are_listed_without_credentials(
    api: Api, bus: MemoryBus, env: Env, key_ring, api_key_integration: str
) -> None:
    await store_connection(
        bus, key_ring, env, api_key_integration, "conn-1",
        credentials={"type": "API_KEY", "api_key": "listed-key"},
    )
    status, body = await api.call("GET", "/connections")
    assert status == 200
    assert body["next_cursor"] is None
    [summary] = body["data"]
    assert set(summary) == {
        "connection_id", "integration_id", "provider", "auth_mode", "environment",
        "created_at", "updated_at", "end_user", "errors",
    }
    assert (summary["connection_id"], summary["auth_mode"]) == ("conn-1", "API_KEY")
    assert summary["errors"] == []
    assert "listed-key" not in str(body)


async def test_connections_are_filtered_by_integration_and_end_user(
    api: Api, bus: MemoryBus, env: Env, key_ring, api_key_integration: str
) -> None:
    other = await api.create_integration("api-key")
    await store_connection(bus, key_ring, env, api_key_integration, "a", end_user=EndUser(id="u1"))
    await store_connection(bus, key_ring, env, other, "b", end_user=EndUser(id="u1"))
    await store_connection(bus, key_ring, env, other, "c", end_user=EndUser(id="u2"))
    _, by_integration = await api.call("GET", "/connections", params={"integration_id": other})
    assert {c["connection_id"] for c in by_integration["data"]} == {"b", "c"}
    _, by_user = await api.call("GET", "/connections", params={"end_user_id": "u1"})
    assert {c["connection_id"] for c in by_user["data"]} == {"a", "b"}


@pytest.mark.parametrize("search", ["ADA@EXAMPLE", "lovelace", "conn-ada", "user-ada"])
async def test_search_matches_ids_email_and_display_name(
    api: Api, bus: MemoryBus, env: Env, key_ring, api_key_integration: str, search: str
) -> None:
    user = EndUser(id="user-ada", email="ada@example.com", display_name="Ada Lovelace")
    await store_connection(bus, key_ring, env, api_key_integration, "conn-ada", end_user=user)
    await store_connection(bus, key_ring, env, api_key_integration, "conn-bob")
    _, body = await api.call("GET", "/connections", params={"search": search})
    assert [c["connection_id"] for c in body["data"]] == ["conn-ada"]


async def test_search_treats_wildcards_literally(
    api: Api, bus: MemoryBus, env: Env, key_ring, api_key_integration: str
) -> None:
    await store_connection(bus, key_ring, env, api_key_integration, "conn-1")
    _, body = await api.call("GET", "/connections", params={"search": "%"})
    assert body["data"] == []


async def test_connections_are_paged_newest_first(
    api: Api, bus: MemoryBus, env: Env, key_ring, api_key_integration: str
) -> None:
    for connection_id in ("c1", "c2", "c3"):
        await store_connection(bus, key_ring, env, api_key_integration, connection_id)
    _, first = await api.call("GET", "/connections", params={"limit": "2"})
    assert [c["connection_id"] for c in first["data"]] == ["c3", "c2"]
    _, second = await api.call(
        "GET", "/connections", params={"limit": "2", "cursor": first["next_cursor"]}
    )
    assert [c["connection_id"] for c in second["data"]] == ["c1"]
    assert second["next_cursor"] is None


async def test_foreign_cursor_is_refused(api: Api) -> None:
    status, body = await api.call("GET", "/connections", params={"cursor": "not-a-cursor"})
    assert status == 400
    assert body["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
async def test_limit_out_of_range_is_refused(api: Api, limit: str) -> None:
    status, body = await api.call("GET", "/connections", params={"limit": limit})
    assert status == 400
    assert "limit" in body["error"]["message"]


async def test_delete_removes_and_announces_the_connection(
    api: Api, bus: MemoryBus, env: Env, key_ring, api_key_integration: str
) -> None:
    seen = await collect(bus, ConnectionDeleted)
    user = EndUser(id="u-1")
    await store_connection(bus, key_ring, env, api_key_integration, "conn-1", end_user=user)
    assert (await api.call("DELETE", "/connections/conn-1"))[0] == 204
    await wait_for(lambda: len(seen) == 1)
    assert (seen[0].connection_id, seen[0].integration_id, seen[0].end_user) == (
        "conn-1", api_key_integration, user
    )
    assert (await api.call("GET", "/connections/conn-1"))[0] == 404


async def test_delete_of_unknown_connection_is_not_found(api: Api) -> None:
    status, body = await api.call("DELETE", "/connections/nope")
    assert status == 404
    assert body["error"]["code"] == "connection_not_found"


async def test_ambiguous_delete_is_refused_and_deletes_nothing(
    api: Api, bus: MemoryBus, env: Env, key_ring, api_key_integration: str
) -> None:
    other = await api.create_integration("api-key")
    for integration_id in (api_key_integration, other):
        await store_connection(bus, key_ring, env, integration_id, "shared")
    status, body = await api.call("DELETE", "/connections/shared")
    assert status == 400
    assert body["error"]["code"] == "integration_id_required"
    for integration_id in (api_key_integration, other):
        params = {"integration_id": integration_id}
        assert (await api.call("GET", "/connections/shared", params=params))[0] == 200


async def test_a_session_cannot_take_over_another_end_users_connection(
    api: Api, bus: MemoryBus, env: Env, key_ring, api_key_integration: str
) -> None:
    seen = await collect(bus, ConnectionUpdated)
    victim, attacker = EndUser(id="victim"), EndUser(id="attacker")
    await store_connection(bus, key_ring, env, api_key_integration, "user-42", end_user=victim,
                           credentials={"type": "API_KEY", "api_key": "victim-key"})

    with pytest.raises(ForbiddenError) as refused:
        await store_connection(bus, key_ring, env, api_key_integration, "user-42",
                               end_user=attacker,
                               credentials={"type": "API_KEY", "api_key": "attacker-key"})

    assert refused.value.code == "connection_of_another_end_user"
    status, body = await api.call("GET", "/connections/user-42")
    assert (body["credentials"]["api_key"], body["end_user"]["id"]) == ("victim-key", "victim")
    # The same end user re-authorizing, or the app's public-key flow, still overrides.
    await store_connection(bus, key_ring, env, api_key_integration, "user-42", end_user=victim,
                           credentials={"type": "API_KEY", "api_key": "victim-key-2"})
    await store_connection(bus, key_ring, env, api_key_integration, "user-42",
                           credentials={"type": "API_KEY", "api_key": "app-key"})
    status, body = await api.call("GET", "/connections/user-42")
    assert (body["credentials"]["api_key"], body["end_user"]["id"]) == ("app-key", "victim")
    await wait_for(lambda: len(seen) == 2)  # the refused attempt announced nothing
