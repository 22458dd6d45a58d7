"""Browsers on the app's pages may call the credential flows and read every answer."""

from __future__ import annotations

import pytest

from tests.conftest import unique
from tests.integration.gateway.conftest import FakeVault

pytestmark = pytest.mark.integration


def app_origin() -> str:
    return f"https://{unique('app')}.example.com"


@pytest.mark.parametrize("mode", ["api-key", "basic"])
async def test_preflight_allows_posting_json_from_any_origin(client, mode: str) -> None:
    origin = app_origin()
    response = await client.options(
        f"/auth/{mode}/openai",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Access-Control-Allow-Methods"] == "POST"
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in response.headers


async def test_successful_flow_echoes_the_origin(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY")
    origin = app_origin()
    response = await client.post(
        f"/auth/api-key/{integration}?public_key={env.public_key}",
        json={"api_key": "k"},
        headers={"Origin": origin},
    )
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert "Origin" in response.headers["Vary"]


async def test_error_answers_echo_the_origin_too(client) -> None:
    origin = app_origin()
    response = await client.post(
        "/auth/basic/openai", json={"username": "a"}, headers={"Origin": origin}
    )
    assert response.status == 401
    assert response.headers["Access-Control-Allow-Origin"] == origin


async def test_request_without_origin_gets_no_cors_headers(client) -> None:
    response = await client.post("/auth/basic/openai", json={"username": "a"})
    assert "Access-Control-Allow-Origin" not in response.headers
