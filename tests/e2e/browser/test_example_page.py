"""What an end user does on the app's page, in a real Chromium, against running services."""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.sync_api import Page

from tests.e2e.browser.conftest import SCREENSHOTS, ExampleApp, create_integration
from tests.e2e.browser.pages.example_page import ConsentPage, ExamplePage
from tests.e2e.sessions import expired_session

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _connection_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_oauth_popup_connects_and_the_backend_gets_a_verified_webhook(
        page: Page, example_app: ExampleApp, consenting_provider) -> None:
    stack = example_app.stack
    integration_id = create_integration(stack, "mock-oauth2", consenting_provider.add_client())
    connection_id = _connection_id("browser")
    app = ExamplePage(page, example_app.url).open().choose(integration_id,
                                                           connection_id=connection_id)
    ConsentPage(app.connect_oauth()).allow()
    app.expect_connected(integration_id, connection_id)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "example-page-connected.png"), full_page=True)

    webhook = example_app.wait_for_webhook(connection_id)  # the app verified its signature
    assert webhook["success"] is True and webhook["integration_id"] == integration_id
    credentials = httpx.get(f"{stack.vault}/connections/{connection_id}",
                            params={"integration_id": integration_id},
                            headers={"Authorization": f"Bearer {stack.keys['secret_key']}"}
                            ).json()["credentials"]
    assert credentials["access_token"] in consenting_provider.access_tokens


def test_denied_consent_rejects_with_access_denied(page: Page, example_app: ExampleApp,
                                                  consenting_provider) -> None:
    integration_id = create_integration(example_app.stack, "mock-oauth2",
                                        consenting_provider.add_client())
    app = ExamplePage(page, example_app.url).open().choose(integration_id)
    ConsentPage(app.connect_oauth()).deny()
    app.expect_failed("access_denied")


def test_closing_the_popup_rejects_with_window_closed(page: Page, example_app: ExampleApp,
                                                     consenting_provider) -> None:
    integration_id = create_integration(example_app.stack, "mock-oauth2",
                                        consenting_provider.add_client())
    app = ExamplePage(page, example_app.url).open().choose(integration_id)
    popup = app.connect_oauth()
    ConsentPage(popup).wait()
    popup.close()
    app.expect_failed("window_closed")


def test_provider_severing_the_opener_still_resolves(page: Page, example_app: ExampleApp,
                                                     consenting_provider) -> None:
    consenting_provider.behaviour.sever_opener = True
    integration_id = create_integration(example_app.stack, "mock-oauth2",
                                        consenting_provider.add_client())
    connection_id = _connection_id("severed")
    app = ExamplePage(page, example_app.url).open().choose(integration_id,
                                                           connection_id=connection_id)
    ConsentPage(app.connect_oauth()).allow()
    app.expect_connected(integration_id, connection_id)


def test_redirect_mode_returns_to_the_page_connected(page: Page, example_app: ExampleApp,
                                                     consenting_provider) -> None:
    integration_id = create_integration(example_app.stack, "mock-oauth2",
                                        consenting_provider.add_client())
    connection_id = _connection_id("redirect")
    app = ExamplePage(page, example_app.url).open().choose(integration_id,
                                                           connection_id=connection_id)
    app.connect_in_this_tab()
    ConsentPage(page).allow()
    app.expect_connected(integration_id, connection_id)
    assert "terapi_status" not in page.url  # the SDK cleaned the address bar


def test_api_key_connects_without_a_popup(page: Page, example_app: ExampleApp) -> None:
    integration_id = create_integration(example_app.stack, "api-key")
    connection_id = _connection_id("key")
    app = ExamplePage(page, example_app.url).open().choose(integration_id,
                                                           connection_id=connection_id)
    app.connect_api_key("sk-browser-test-key")
    app.expect_connected(integration_id, connection_id)
    assert example_app.wait_for_webhook(connection_id)["auth_mode"] == "API_KEY"


def test_basic_credentials_connect(page: Page, example_app: ExampleApp) -> None:
    integration_id = create_integration(example_app.stack, "basic")
    connection_id = _connection_id("basic")
    app = ExamplePage(page, example_app.url).open().choose(integration_id,
                                                           connection_id=connection_id)
    app.connect_basic("ada", "lovelace")
    app.expect_connected(integration_id, connection_id)


def test_expired_connect_session_is_refused(page: Page, example_app: ExampleApp) -> None:
    """The backend hands the page a session that has expired: the SDK reports it."""
    stack = example_app.stack
    integration_id = create_integration(stack, "api-key")
    user_id = f"expired-{uuid.uuid4().hex[:6]}"
    token = expired_session(stack, user_id)
    page.route("**/api/session", lambda route: route.fulfill(json={"token": token}))
    app = ExamplePage(page, example_app.url).open().choose(integration_id, user_id=user_id)
    app.connect_api_key("sk-too-late")
    app.expect_failed("connect_session_expired")
