"""POST /connect/sessions: a backend opens a short-lived session for one end user."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from terapi_common.clock import FakeClock
from tests.conftest import unique
from tests.integration.gateway.conftest import PUBLIC_URL, FakeVault, error_code

pytestmark = pytest.mark.integration


def bearer(secret_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret_key}"}


async def test_session_answers_token_expiry_in_thirty_minutes_and_link(
    client, vault: FakeVault, clock: FakeClock
) -> None:
    env = vault.add_environment()
    response = await client.post(
        "/connect/sessions",
        json={"end_user": {"id": "u-1", "email": "ada@example.com"}},
        headers=bearer(env.secret_key),
    )
    assert response.status == 201
    body = await response.json()
    assert body["token"].startswith("cst_")
    assert datetime.fromisoformat(body["expires_at"]) == clock.now() + timedelta(minutes=30)
    assert body["expires_at"].endswith("+00:00")
    assert body["connect_link"] == f"{PUBLIC_URL}/connect/{body['token']}"


async def test_each_session_gets_its_own_token(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    tokens = set()
    for _ in range(2):
        response = await client.post(
            "/connect/sessions", json={"end_user": {"id": "u-1"}}, headers=bearer(env.secret_key)
        )
        tokens.add((await response.json())["token"])
    assert len(tokens) == 2


async def test_session_stores_a_digest_never_the_token(client, vault: FakeVault, pool) -> None:
    env = vault.add_environment()
    response = await client.post(
        "/connect/sessions", json={"end_user": {"id": "u-1"}}, headers=bearer(env.secret_key)
    )
    token = (await response.json())["token"]
    rows = await pool.fetch(
        "SELECT * FROM gateway.connect_sessions WHERE environment_id = $1", env.id
    )
    assert len(rows) == 1
    assert token not in str(dict(rows[0]))


async def test_session_without_secret_key_is_401(client, vault: FakeVault) -> None:
    response = await client.post("/connect/sessions", json={"end_user": {"id": "u-1"}})
    assert response.status == 401
    assert await error_code(response) == "missing_secret_key"


async def test_session_with_unknown_secret_key_gets_the_vault_refusal(
    client, vault: FakeVault
) -> None:
    response = await client.post(
        "/connect/sessions", json={"end_user": {"id": "u-1"}}, headers=bearer("sk_nobody")
    )
    assert response.status == 401
    assert await error_code(response) == "invalid_secret_key"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "end_user"),
        ({"end_user": {}}, "end_user.id"),
        ({"end_user": {"id": ""}}, "end_user.id"),
        ({"end_user": {"id": "u"}, "allowed_integrations": []}, "allowed_integrations"),
        ({"end_user": {"id": "u"}, "allowed_integrations": [""]}, "allowed_integrations.0"),
        ({"end_user": {"id": "u"}, "surprise": 1}, "surprise"),
    ],
)
async def test_session_with_bad_body_is_400_naming_the_field(
    client, vault: FakeVault, pool, body: dict, field: str
) -> None:
    env = vault.add_environment()
    response = await client.post("/connect/sessions", json=body, headers=bearer(env.secret_key))
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(field)
    count = await pool.fetchval(
        "SELECT count(*) FROM gateway.connect_sessions WHERE environment_id = $1", env.id
    )
    assert count == 0


async def test_session_endpoint_sends_no_cors_headers(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    origin = f"https://{unique('app')}.example.com"
    response = await client.post(
        "/connect/sessions",
        json={"end_user": {"id": "u-1"}},
        headers={**bearer(env.secret_key), "Origin": origin},
    )
    assert response.status == 201
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = await client.options("/connect/sessions", headers={"Origin": origin})
    assert "Access-Control-Allow-Origin" not in preflight.headers
