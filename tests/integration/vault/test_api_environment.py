"""Authentication, the environment's settings and the provider catalog through the HTTP API."""

from __future__ import annotations

import pytest

from terapi_common.crypto import sha256_hex
from terapi_common.events import AuthenticateSecretKey, EnvironmentChanged
from terapi_common.memory_bus import MemoryBus
from tests.integration.vault.conftest import PUBLIC_URL, Api, Env, collect, wait_for

pytestmark = pytest.mark.integration


async def test_request_without_secret_key_is_unauthorized(client, env: Env) -> None:
    response = await client.get("/integrations")
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "missing_secret_key"


async def test_request_with_unknown_secret_key_is_unauthorized(client, env: Env) -> None:
    response = await client.get("/integrations", headers={"Authorization": "Bearer sk_nope"})
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "invalid_secret_key"


async def test_environment_shows_its_settings_and_no_secret(api: Api, env: Env) -> None:
    status, body = await api.call("GET", "/environment")
    assert status == 200
    assert body == {
        "name": env.name, "public_key": env.public_key, "callback_url": None,
        "webhook_url": None, "webhook_secondary_url": None,
        "send_new_connection_webhooks": True, "send_auth_failure_webhooks": False,
        "require_connect_sessions": False,
        "default_callback_url": f"{PUBLIC_URL}/oauth/callback",
    }
    assert env.secret_key not in str(body) and env.webhook_secret not in str(body)


async def test_environment_settings_are_changed(api: Api) -> None:
    changes = {
        "webhook_url": "https://app.test/hooks", "webhook_secondary_url": "http://backup.test/h",
        "callback_url": "https://app.test/callback", "send_new_connection_webhooks": False,
        "send_auth_failure_webhooks": True, "require_connect_sessions": True,
    }
    status, body = await api.call("PATCH", "/environment", json=changes)
    assert status == 200
    assert {k: body[k] for k in changes} == changes
    assert (await api.call("GET", "/environment"))[1] == body


async def test_changed_settings_are_announced_and_a_refused_change_is_not(
    api: Api, bus: MemoryBus, env: Env
) -> None:
    """The webhooks service keeps targets between events: it must hear of every change."""
    changes = await collect(bus, EnvironmentChanged)
    assert (await api.call("PATCH", "/environment", json={"webhook_url": "ftp://x"}))[0] == 400
    assert (await api.call("PATCH", "/environment",
                           json={"webhook_url": "https://app.test/new"}))[0] == 200
    await wait_for(lambda: len(changes) == 1)
    assert changes[0].environment_id == env.id


async def test_url_set_to_null_is_removed(api: Api) -> None:
    await api.call("PATCH", "/environment", json={"webhook_url": "https://app.test/hooks"})
    status, body = await api.call("PATCH", "/environment", json={"webhook_url": None})
    assert (status, body["webhook_url"]) == (200, None)


async def test_unknown_environment_fields_are_all_named(api: Api) -> None:
    status, body = await api.call("PATCH", "/environment", json={"name": "x", "secret_key": "y"})
    assert status == 400
    assert body["error"]["code"] == "invalid_request"
    assert "name, secret_key" in body["error"]["message"]


@pytest.mark.parametrize("url", ["ftp://app.test/h", "not a url", "https://", "javascript:x"])
async def test_non_http_webhook_url_is_refused_and_nothing_changes(api: Api, url: str) -> None:
    _, before = await api.call("GET", "/environment")
    status, body = await api.call(
        "PATCH", "/environment", json={"send_auth_failure_webhooks": True, "webhook_url": url}
    )
    assert status == 400
    assert "webhook_url" in body["error"]["message"]
    assert (await api.call("GET", "/environment"))[1] == before


async def test_toggle_must_be_a_boolean(api: Api) -> None:
    status, body = await api.call(
        "PATCH", "/environment", json={"require_connect_sessions": "yes"}
    )
    assert status == 400
    assert "require_connect_sessions" in body["error"]["message"]


async def test_requiring_connect_sessions_shows_in_key_authentication_at_once(
    api: Api, bus: MemoryBus, env: Env
) -> None:
    command = AuthenticateSecretKey(key_digest=sha256_hex(env.secret_key))
    assert (await bus.request(command)).connect_sessions_required is False
    await api.call("PATCH", "/environment", json={"require_connect_sessions": True})
    assert (await bus.request(command)).connect_sessions_required is True


async def test_providers_are_listed(api: Api) -> None:
    status, body = await api.call("GET", "/providers")
    assert status == 200
    names = {p["name"] for p in body["data"]}
    assert {"api-key", "basic", "oauth2", "test-oauth2"} <= names


async def test_provider_is_read_by_name(api: Api) -> None:
    status, body = await api.call("GET", "/providers/test-oauth2")
    assert status == 200
    assert (body["name"], body["auth_mode"]) == ("test-oauth2", "OAUTH2")
    assert body["token_url"] == "https://provider.test/oauth/token"


async def test_unknown_provider_is_not_found(api: Api) -> None:
    status, body = await api.call("GET", "/providers/nope")
    assert status == 404
    assert body["error"]["code"] == "provider_not_found"


async def test_providers_need_a_secret_key(client, env: Env) -> None:
    response = await client.get("/providers")
    assert response.status == 401
