"""How a flow's outcome reaches the app: the popup page, redirect mode and the result channel."""

from __future__ import annotations

import asyncio
import re
import uuid

import orjson
import pytest

from tests.conftest import unique
from tests.integration.gateway.conftest import FakeVault, error_code
from tests.integration.gateway.oauth_steps import (
    APP_ORIGIN,
    at_provider,
    begin,
    connect,
    connect_params,
    path_of,
    query_of,
    result_of,
    run,
)
from tests.support.mock_provider import MockProvider

pytestmark = pytest.mark.integration


def posted(page: str) -> tuple[dict, str]:
    """The message the page posts to its opener, and the target origin."""
    message = re.search(r"var message = (.*);", page)
    origin = re.search(r"var origin = (.*);", page)
    assert message and origin, page
    return orjson.loads(message.group(1)), orjson.loads(origin.group(1))


@pytest.fixture
def integration(vault: FakeVault, provider: MockProvider):
    def make(env) -> str:
        return vault.add_integration(env, "mock-oauth2", "OAUTH2", client=provider.add_client())

    return make


# ---------------------------------------------------------------- the popup page


async def test_success_page_posts_to_exactly_the_flows_origin(
    client, vault: FakeVault, integration
) -> None:
    env = vault.add_environment()
    integration_id = integration(env)
    flow = await run(client, env, integration_id, connection_id="c-1")
    message, origin = posted(await flow.page.text())
    assert origin == APP_ORIGIN
    assert message == {"source": "terapi", "flowId": flow.flow_id, "type": "success",
                       "integrationId": integration_id, "connectionId": "c-1"}
    assert '"*"' not in await flow.page.text()


async def test_error_page_posts_the_error_code_and_message(
    client, vault: FakeVault, provider: MockProvider, integration
) -> None:
    provider.behaviour.token_error = "invalid_grant"
    env = vault.add_environment()
    flow = await run(client, env, integration(env))
    message, origin = posted(await flow.page.text())
    assert origin == APP_ORIGIN
    assert message["type"] == "error"
    assert message["flowId"] == flow.flow_id
    assert message["error"]["type"] == "token_exchange_failed"
    assert "invalid_grant" in message["error"]["message"]


async def test_page_is_locked_down(client, vault: FakeVault, integration) -> None:
    env = vault.add_environment()
    flow = await run(client, env, integration(env))
    headers, page = flow.page.headers, await flow.page.text()
    nonce = re.search(r"script-src 'nonce-([^']+)'", headers["Content-Security-Policy"]).group(1)
    assert f'<script nonce="{nonce}">' in page
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    assert not re.search(r"\son[a-z]+\s*=", page)  # no inline event handlers


async def test_each_page_has_a_fresh_nonce(client, vault: FakeVault, integration) -> None:
    env = vault.add_environment()
    first = await run(client, env, integration(env))
    second = await run(client, env, integration(env))
    csp = "Content-Security-Policy"
    assert first.page.headers[csp] != second.page.headers[csp]


async def test_message_text_cannot_close_the_script(
    client, vault: FakeVault, provider: MockProvider, integration
) -> None:
    env = vault.add_environment()
    query = connect_params(env)
    started = await connect(client, integration(env), query)
    state = query_of(started.headers["Location"])["state"]
    page = await client.get("/oauth/callback", params={
        "state": state, "error": "x", "error_description": "</script><script>alert(1)"})
    text = await page.text()
    assert "</script><script>alert(1)" not in text
    assert "alert(1)" in posted(text)[0]["error"]["message"]


async def test_without_origin_the_page_only_shows_the_outcome(
    client, vault: FakeVault, integration
) -> None:
    env = vault.add_environment()
    flow = await run(client, env, integration(env), origin=None)
    text = await flow.page.text()
    assert "postMessage" not in text
    assert "Connected" in text


@pytest.mark.parametrize(
    "origin",
    ["https://app.example.com/", "https://app.example.com/path", "*", "javascript:alert(1)",
     "https://APP.example.com", "https://app.example.com:443", "ftp://app.example.com"],
)
async def test_origin_must_be_an_exact_http_origin(
    client, vault: FakeVault, provider: MockProvider, integration, origin: str
) -> None:
    env = vault.add_environment()
    query = connect_params(env, origin=origin)
    response = await connect(client, integration(env), query)
    assert response.status == 400
    assert "postMessage" not in await response.text()
    assert (await result_of(client, query["flow_id"]))["error"]["code"] == "invalid_request"
    assert provider.paths == []


async def test_flow_id_must_be_a_uuid(client, vault: FakeVault, integration) -> None:
    env = vault.add_environment()
    response = await connect(client, integration(env), connect_params(env, flow_id="flow-1"))
    assert response.status == 400
    assert "invalid_request" in await response.text()


async def test_validation_failure_page_posts_to_the_opener(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    query = connect_params(env, public_key=None)
    response = await connect(client, "anything", query)
    assert response.status == 401
    message, origin = posted(await response.text())
    assert (origin, message["flowId"]) == (APP_ORIGIN, query["flow_id"])
    assert message["error"]["type"] == "missing_auth_token"


async def test_unauthenticated_connect_records_no_result(client, vault: FakeVault) -> None:
    """Anyone can call /oauth/connect: without a valid caller, no row is written."""
    env = vault.add_environment()
    query = connect_params(env, public_key="pk_not_issued")
    response = await connect(client, "anything", query)
    assert response.status == 401
    unknown = await client.get(f"/oauth/result/{query['flow_id']}")
    assert unknown.status == 404
    assert await error_code(unknown) == "flow_not_found"


async def test_a_flow_id_names_one_attempt_only(
    client, vault: FakeVault, provider: MockProvider, integration
) -> None:
    env = vault.add_environment()
    integration_id = integration(env)
    query = connect_params(env)
    first = await connect(client, integration_id, query)
    again = await connect(client, integration_id, query)
    assert first.status == 302
    assert again.status == 409
    assert "flow_id_in_use" in await again.text()
    await client.get(path_of(await at_provider(first.headers["Location"])))
    assert (await result_of(client, query["flow_id"]))["status"] == "success"


# ---------------------------------------------------------------- redirect mode


async def test_redirect_mode_sends_the_success_to_the_return_url(
    client, vault: FakeVault, integration
) -> None:
    env = vault.add_environment()
    integration_id = integration(env)
    flow = await run(client, env, integration_id, connection_id="c-9",
                     return_url=f"{APP_ORIGIN}/settings?tab=apps")
    assert flow.page.status == 302
    location = flow.page.headers["Location"]
    assert location.startswith(f"{APP_ORIGIN}/settings?")
    assert query_of(location) == {"tab": "apps", "terapi_status": "success",
                                  "terapi_integration_id": integration_id,
                                  "terapi_connection_id": "c-9"}


async def test_return_url_is_kept_sealed_while_the_end_user_is_away(
    client, vault: FakeVault, integration, pool
) -> None:
    """The hosted page's return URL carries its session token: the flow's row must not."""
    env = vault.add_environment()
    integration_id = integration(env)
    return_url = f"{APP_ORIGIN}/connect/cst_{unique('hosted-token')}"
    params, started = await begin(client, env, integration_id, return_url=return_url)
    rows = await pool.fetch(
        "SELECT * FROM gateway.oauth_flows WHERE environment_id = $1", env.id)
    assert len(rows) == 1 and rows[0]["return_url"] is None
    assert return_url.rsplit("/", 1)[1] not in repr(dict(rows[0]))
    callback_url = await at_provider(started.headers["Location"])
    page = await client.get(path_of(callback_url), allow_redirects=False)
    assert page.headers["Location"].startswith(f"{return_url}?terapi_status=success")


async def test_redirect_mode_sends_failures_to_the_return_url(
    client, vault: FakeVault, provider: MockProvider, integration
) -> None:
    provider.behaviour.malformed_token_response = True
    env = vault.add_environment()
    flow = await run(client, env, integration(env), return_url=f"{APP_ORIGIN}/done")
    sent = query_of(flow.page.headers["Location"])
    assert (sent["terapi_status"], sent["terapi_error"]) == ("error", "invalid_token_response")
    assert sent["terapi_error_message"]


async def test_redirect_mode_reports_validation_failures_too(
    client, vault: FakeVault, integration
) -> None:
    env = vault.add_environment()
    query = connect_params(env, return_url=f"{APP_ORIGIN}/done", scopes="a b")
    response = await connect(client, integration(env), query)
    assert response.status == 302
    sent = query_of(response.headers["Location"])
    assert response.headers["Location"].startswith(f"{APP_ORIGIN}/done?")
    assert (sent["terapi_status"], sent["terapi_error"]) == ("error", "invalid_request")


async def test_failure_before_the_caller_is_known_is_not_redirected(
    client, vault: FakeVault, integration
) -> None:
    """An unauthenticated request must not turn the gateway into an open redirect."""
    env = vault.add_environment()
    query = connect_params(env, public_key=None, origin="https://evil.example.net",
                           return_url="https://evil.example.net/phish")
    response = await connect(client, integration(env), query)
    assert response.status == 401
    assert "Location" not in response.headers
    assert "missing_auth_token" in await response.text()


@pytest.mark.parametrize("return_url", [
    "https://evil.example.net\\@app.example.com/done",
    "https://user:pw@app.example.com/done",
    "https://app.example.com/do\\ne",
    "https://app.example.com/done\x00",
])
async def test_return_url_a_browser_could_read_differently_is_refused(
    client, vault: FakeVault, integration, return_url: str
) -> None:
    env = vault.add_environment()
    query = connect_params(env, return_url=return_url)
    response = await connect(client, integration(env), query)
    assert response.status == 400
    assert "Location" not in response.headers
    assert "return_url" in await response.text()


@pytest.mark.parametrize(
    "return_url", ["https://evil.example.net/done", "javascript:alert(1)", "/relative"]
)
async def test_return_url_off_the_origin_is_refused_without_redirect(
    client, vault: FakeVault, integration, return_url: str
) -> None:
    env = vault.add_environment()
    query = connect_params(env, return_url=return_url)
    response = await connect(client, integration(env), query)
    assert response.status == 400
    assert "Location" not in response.headers
    assert (await result_of(client, query["flow_id"]))["error"]["code"] == "invalid_request"


# ---------------------------------------------------------------- the result channel


async def test_result_is_pending_until_the_callback_then_success(
    client, vault: FakeVault, integration
) -> None:
    env = vault.add_environment()
    integration_id = integration(env)
    query = connect_params(env, connection_id="c-5")
    started = await connect(client, integration_id, query)
    assert await result_of(client, query["flow_id"]) == {"status": "pending"}
    waiting = asyncio.create_task(result_of(client, query["flow_id"], wait="10"))
    await client.get(path_of(await at_provider(started.headers["Location"])))
    assert await asyncio.wait_for(waiting, 10) == {
        "status": "success", "integration_id": integration_id, "connection_id": "c-5"
    }


async def test_failed_result_carries_code_and_message(
    client, vault: FakeVault, provider: MockProvider, integration
) -> None:
    provider.behaviour.token_error = "invalid_grant"
    env = vault.add_environment()
    flow = await run(client, env, integration(env))
    found = await result_of(client, flow.flow_id)
    assert found["status"] == "failed"
    assert set(found["error"]) == {"code", "message"}


async def test_unknown_flow_is_flow_not_found(client) -> None:
    response = await client.get(f"/oauth/result/{uuid.uuid4()}", params={"wait": "0"})
    assert response.status == 404
    assert await error_code(response) == "flow_not_found"


@pytest.mark.parametrize(("flow_id", "wait"), [("not-a-uuid", "0"), (None, "26"),
                                              (None, "-1"), (None, "soon")])
async def test_bad_result_request_is_400(client, flow_id, wait: str) -> None:
    response = await client.get(f"/oauth/result/{flow_id or uuid.uuid4()}", params={"wait": wait})
    assert response.status == 400
    assert await error_code(response) == "invalid_request"


async def test_result_answers_pages_of_any_origin(client, vault: FakeVault, integration) -> None:
    env = vault.add_environment()
    flow = await run(client, env, integration(env))
    response = await client.get(f"/oauth/result/{flow.flow_id}", headers={"Origin": APP_ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
