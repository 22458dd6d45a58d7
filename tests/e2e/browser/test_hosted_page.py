"""What an end user does on Terapi's hosted connect page, opened from a connect_link."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser.conftest import SCREENSHOTS, ExampleApp, create_integration
from tests.e2e.browser.pages.example_page import ConsentPage, HostedConnectPage
from tests.e2e.sessions import expired_session
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@dataclass(frozen=True)
class HostedSession:
    """A connect session opened by the backend, and the integrations it allows."""

    stack: Stack
    end_user: dict[str, str]
    api_key_integration: str
    oauth_integration: str
    link: str


def _headers(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.keys['secret_key']}"}


def _open_session(stack: Stack, end_user: dict[str, str], allowed: list[str]) -> dict:
    response = httpx.post(f"{stack.gateway}/connect/sessions", headers=_headers(stack),
                          json={"end_user": end_user, "allowed_integrations": allowed})
    response.raise_for_status()
    return response.json()


def _only_connection(stack: Stack, integration_id: str) -> dict:
    """The one connection of a test's own integration, read with its credentials."""
    listed = httpx.get(f"{stack.vault}/connections", headers=_headers(stack),
                       params={"integration_id": integration_id}).json()["data"]
    assert len(listed) == 1, listed
    response = httpx.get(f"{stack.vault}/connections/{listed[0]['connection_id']}",
                         headers=_headers(stack), params={"integration_id": integration_id})
    response.raise_for_status()
    return response.json()


@pytest.fixture
def hosted(example_app: ExampleApp, consenting_provider) -> HostedSession:
    """A session allowing an API-key and an OAuth integration, for a named end user."""
    stack = example_app.stack
    api_key_integration = create_integration(stack, "api-key")
    oauth_integration = create_integration(stack, "mock-oauth2", consenting_provider.add_client())
    end_user = {"id": f"hosted-{uuid.uuid4().hex[:6]}", "email": "ada@example.com",
                "display_name": "Ada Lovelace"}
    opened = _open_session(stack, end_user, [api_key_integration, oauth_integration])
    return HostedSession(stack, end_user, api_key_integration, oauth_integration,
                         opened["connect_link"])


def test_connect_link_is_the_gateway_page_for_the_session(hosted: HostedSession) -> None:
    assert hosted.link.startswith(f"{hosted.stack.gateway}/connect/cst_")


def test_api_key_typed_on_the_page_is_stored_for_the_sessions_end_user(
        page: Page, hosted: HostedSession) -> None:
    connect = HostedConnectPage(page, hosted.link).open().choose(hosted.api_key_integration)
    connect.fill("api_key", "sk-hosted-page-key").submit()
    connect.expect_success("Any API (API key) is connected.")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "hosted-page-connected.png"), full_page=True)

    connection = _only_connection(hosted.stack, hosted.api_key_integration)
    assert connection["credentials"]["api_key"] == "sk-hosted-page-key"
    assert connection["end_user"] == hosted.end_user


def test_oauth_consent_in_the_popup_connects_the_sessions_end_user(
        page: Page, hosted: HostedSession, consenting_provider) -> None:
    connect = HostedConnectPage(page, hosted.link).open().choose(hosted.oauth_integration)
    ConsentPage(connect.continue_in_popup()).allow()
    connect.expect_success("Mock OAuth 2 (PKCE) is connected.")

    connection = _only_connection(hosted.stack, hosted.oauth_integration)
    assert connection["credentials"]["access_token"] in consenting_provider.access_tokens
    assert connection["end_user"] == hosted.end_user


def test_oauth_goes_through_this_tab_when_popups_are_blocked(
        page: Page, hosted: HostedSession) -> None:
    page.add_init_script("window.open = function () { return null; };")
    connect = HostedConnectPage(page, hosted.link).open().choose(hosted.oauth_integration)
    connect.submit()
    ConsentPage(page).allow()
    connect.expect_success("The connection is ready.")
    assert page.url == hosted.link  # the outcome was taken out of the address bar
    assert _only_connection(hosted.stack, hosted.oauth_integration)["end_user"] == hosted.end_user


def test_denied_consent_shows_access_denied(page: Page, hosted: HostedSession) -> None:
    connect = HostedConnectPage(page, hosted.link).open().choose(hosted.oauth_integration)
    ConsentPage(connect.continue_in_popup()).deny()
    connect.expect_error("access_denied")


def test_closing_the_popup_is_reported_without_waiting_for_the_result_poll(
        page: Page, hosted: HostedSession) -> None:
    connect = HostedConnectPage(page, hosted.link).open().choose(hosted.oauth_integration)
    popup = connect.continue_in_popup()
    ConsentPage(popup).wait()
    popup.close()
    connect.expect_error("window_closed")  # well within one 25-second poll
    expect(page.locator("#submit")).to_be_enabled()


def test_going_back_closes_the_sign_in_window_and_another_integration_connects(
        page: Page, hosted: HostedSession) -> None:
    connect = HostedConnectPage(page, hosted.link).open().choose(hosted.oauth_integration)
    popup = connect.continue_in_popup()
    ConsentPage(popup).wait()
    with popup.expect_event("close"):
        connect.back()
    connect.choose(hosted.api_key_integration).fill("api_key", "sk-after-back").submit()
    connect.expect_success("Any API (API key) is connected.")


def test_connection_config_typed_on_the_page_reaches_the_provider(
        page: Page, example_app: ExampleApp, consenting_provider) -> None:
    """A tenant-scoped provider (like Zendesk) is sent to the subdomain the end user typed."""
    stack = example_app.stack
    integration_id = create_integration(stack, "mock-tenant", consenting_provider.add_client())
    link = _open_session(stack, {"id": f"tenant-{uuid.uuid4().hex[:6]}"},
                         [integration_id])["connect_link"]
    connect = HostedConnectPage(page, link).open()  # the only integration is chosen at once
    connect.fill("subdomain", "acme-corp", group="connection_config")
    ConsentPage(connect.continue_in_popup()).allow()
    connect.expect_success("is connected.")

    assert consenting_provider.authorize_requests[-1]["_tenant"] == "acme-corp"
    connection = _only_connection(stack, integration_id)
    assert connection["connection_config"]["subdomain"] == "acme-corp"


def test_connection_config_not_matching_the_pattern_is_refused_on_the_page(
        page: Page, example_app: ExampleApp, consenting_provider) -> None:
    """The catalog's pattern is checked before the end user is sent anywhere."""
    stack = example_app.stack
    integration_id = create_integration(stack, "mock-tenant", consenting_provider.add_client())
    link = _open_session(stack, {"id": f"tenant-{uuid.uuid4().hex[:6]}"},
                         [integration_id])["connect_link"]
    connect = HostedConnectPage(page, link).open()
    connect.fill("subdomain", "Not A Subdomain!", group="connection_config").submit()
    subdomain = connect.field("subdomain", group="connection_config")
    assert "like acme" in subdomain.evaluate("input => input.validationMessage")
    assert page.context.pages == [page]  # no window was opened at the provider
    expect(page.locator("#status")).to_be_hidden()


def test_only_the_sessions_allowed_integrations_are_offered(
        page: Page, example_app: ExampleApp, hosted: HostedSession) -> None:
    other = create_integration(example_app.stack, "api-key")
    offered = HostedConnectPage(page, hosted.link).open().offered()
    assert sorted(offered) == sorted([hosted.api_key_integration, hosted.oauth_integration])
    assert other not in offered


def test_unknown_token_shows_an_error_page(page: Page, example_app: ExampleApp) -> None:
    link = f"{example_app.stack.gateway}/connect/cst_{secrets.token_urlsafe(24)}"
    connect = HostedConnectPage(page, link).open()
    connect.expect_error("invalid_connect_session_token")
    _expect_refused(page)


def test_mangled_link_shows_an_error_page(page: Page, example_app: ExampleApp) -> None:
    """A link cut or altered in transit (here, broken %-encoding) is refused by name."""
    connect = HostedConnectPage(page, f"{example_app.stack.gateway}/connect/cst_%ZZ").open()
    connect.expect_error("invalid_connect_session_token")
    _expect_refused(page)


def test_expired_session_shows_an_error_page(page: Page, hosted: HostedSession) -> None:
    token = expired_session(hosted.stack, hosted.end_user["id"], [hosted.api_key_integration])
    connect = HostedConnectPage(page, f"{hosted.stack.gateway}/connect/{token}").open()
    connect.expect_error("connect_session_expired")
    _expect_refused(page)


def _expect_refused(page: Page) -> None:
    """A plain explanation and nothing to fill in; no stack trace."""
    expect(page.locator("#title")).to_have_text("This link cannot be used")
    expect(page.locator("#lead")).to_be_hidden()
    expect(page.locator("#status")).to_contain_text("Ask the app for a new one.")
    expect(page.locator("#integrations button")).to_have_count(0)
    expect(page.locator("#form")).to_be_hidden()
    assert "Traceback" not in page.content()
