"""API-key and Basic connections through the whole system, as an app would use Terapi."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiohttp
import asyncpg
import pytest
from standardwebhooks.webhooks import Webhook

from tests.e2e.conftest import Receiver
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _bearer(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.keys['secret_key']}"}


async def _setup_environment(http: aiohttp.ClientSession, stack: Stack, receiver: Receiver,
                             provider: str) -> str:
    async with http.patch(f"{stack.vault}/environment", headers=_bearer(stack),
                          json={"webhook_url": receiver.url,
                                "send_new_connection_webhooks": True}) as response:
        assert response.status == 200, await response.text()
    integration_id = f"{provider}-{uuid.uuid4().hex[:8]}"
    async with http.post(f"{stack.vault}/integrations", headers=_bearer(stack),
                         json={"integration_id": integration_id, "provider": provider}) as response:
        assert response.status == 201, await response.text()
    return integration_id


async def _connect_session(http: aiohttp.ClientSession, stack: Stack, user_id: str) -> str:
    async with http.post(f"{stack.gateway}/connect/sessions", headers=_bearer(stack),
                         json={"end_user": {"id": user_id, "email": f"{user_id}@example.com"}}
                         ) as response:
        assert response.status == 201, await response.text()
        return (await response.json())["token"]


def _webhook_for(connection_id: str, operation: str):
    def matches(_headers: dict[str, str], body: bytes) -> bool:
        payload = json.loads(body)
        return (payload.get("connection_id"), payload.get("operation")) == (
            connection_id, operation)

    return matches


async def _operation_for(http: aiohttp.ClientSession, stack: Stack, connection_id: str) -> dict:
    for _ in range(200):
        async with http.get(f"{stack.logs}/logs/operations", headers=_bearer(stack),
                            params={"connection_id": connection_id, "type": "auth"}) as response:
            assert response.status == 200, await response.text()
            data = (await response.json())["data"]
        if data and data[0]["status"] != "running":
            return data[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no finished operation for {connection_id}")


async def _stored_row_bytes(stack: Stack, connection_id: str) -> bytes:
    url = stack.database_url
    if url is None:  # terapi up: join the embedded server the process started
        import pgserver

        url = pgserver.get_server(stack.env["TERAPI_HOME"] + "/pgdata", cleanup_mode=None).get_uri()
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT row_to_json(c)::text AS text, credentials_encrypted AS blob "
            "FROM vault.connections c WHERE connection_id = $1", connection_id)
    finally:
        await conn.close()
    assert row is not None
    return row["text"].encode() + bytes(row["blob"])


async def test_api_key_connection_end_to_end(stack: Stack, receiver: Receiver) -> None:
    """Session -> API key -> signed webhook -> logged operation -> credentials read back."""
    api_key = f"sk-live-{uuid.uuid4().hex}"
    connection_id = f"user-42-{uuid.uuid4().hex[:6]}"
    async with aiohttp.ClientSession() as http:
        integration_id = await _setup_environment(http, stack, receiver, "api-key")
        token = await _connect_session(http, stack, "user-42")
        async with http.post(f"{stack.gateway}/auth/api-key/{integration_id}",
                             params={"connection_id": connection_id,
                                     "connect_session_token": token},
                             json={"api_key": api_key}) as response:
            assert response.status == 200, await response.text()
            assert await response.json() == {"integration_id": integration_id,
                                             "connection_id": connection_id}

        headers, body = await receiver.wait_for(_webhook_for(connection_id, "creation"))
        Webhook(stack.keys["webhook_secret"]).verify(body, headers)
        payload = json.loads(body)
        assert payload["type"] == "auth" and payload["success"] is True
        assert payload["integration_id"] == integration_id
        assert payload["provider"] == "api-key" and payload["auth_mode"] == "API_KEY"
        assert payload["environment"] == "dev"
        assert payload["end_user"]["id"] == "user-42"

        operation = await _operation_for(http, stack, connection_id)
        assert operation["status"] == "success" and operation["type"] == "auth"
        assert operation["integration_id"] == integration_id

        async with http.get(f"{stack.vault}/connections/{connection_id}", headers=_bearer(stack),
                            params={"integration_id": integration_id}) as response:
            assert response.status == 200, await response.text()
            connection = await response.json()
        assert connection["credentials"] == {"type": "API_KEY", "api_key": api_key}
        assert connection["end_user"]["id"] == "user-42"

    assert api_key.encode() not in await _stored_row_bytes(stack, connection_id)
    assert api_key not in stack.output()


async def test_basic_connection_overridden_with_same_ids(stack: Stack, receiver: Receiver) -> None:
    """The same ids twice: the second attempt overrides, and the webhook says so."""
    connection_id = f"acct-{uuid.uuid4().hex[:6]}"
    async with aiohttp.ClientSession() as http:
        integration_id = await _setup_environment(http, stack, receiver, "basic")
        url = f"{stack.gateway}/auth/basic/{integration_id}"
        params = {"connection_id": connection_id, "public_key": stack.keys["public_key"]}
        for password in ("first-password", "second-password"):
            async with http.post(url, params=params,
                                 json={"username": "ada", "password": password}) as response:
                assert response.status == 200, await response.text()

        headers, body = await receiver.wait_for(_webhook_for(connection_id, "override"))
        Webhook(stack.keys["webhook_secret"]).verify(body, headers)

        async with http.get(f"{stack.vault}/connections/{connection_id}",
                            headers=_bearer(stack)) as response:
            credentials = (await response.json())["credentials"]
        assert credentials == {"type": "BASIC", "username": "ada", "password": "second-password"}

    stored = await _stored_row_bytes(stack, connection_id)
    assert b"second-password" not in stored
    assert "second-password" not in stack.output()


async def test_rejected_attempt_is_logged_as_failed(stack: Stack) -> None:
    """An attempt on an unknown integration fails cleanly and shows in the logs."""
    connection_id = f"ghost-{uuid.uuid4().hex[:6]}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{stack.gateway}/auth/api-key/no-such-integration",
                             params={"connection_id": connection_id,
                                     "public_key": stack.keys["public_key"]},
                             json={"api_key": "whatever-key"}) as response:
            assert response.status == 404
            assert (await response.json())["error"]["code"] == "integration_not_found"
        operation = await _operation_for(http, stack, connection_id)
    assert operation["status"] == "failed"
    assert operation["error"]["code"] == "integration_not_found"
