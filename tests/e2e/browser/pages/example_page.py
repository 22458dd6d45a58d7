"""Page objects: the quickstart app's page and the mock provider's consent page."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect


class ExamplePage:
    """The app's frontend with its Connect buttons."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url

    def open(self) -> ExamplePage:
        self.page.goto(self.url)
        expect(self.page.locator("#status")).to_have_text("Ready.")
        return self

    def choose(self, integration_id: str, *, connection_id: str = "", user_id: str = "user-42",
               params: str = "") -> ExamplePage:
        self.page.fill("#integration-id", integration_id)
        self.page.fill("#connection-id", connection_id)
        self.page.fill("#user-id", user_id)
        self.page.fill("#params", params)
        return self

    def connect_oauth(self) -> Page:
        """Press Connect and return the popup the SDK opened."""
        with self.page.expect_popup() as popup:
            self.page.click("#connect-oauth")
        return popup.value

    def connect_in_this_tab(self) -> None:
        self.page.click("#connect-oauth-redirect")

    def connect_api_key(self, api_key: str) -> None:
        self.page.fill("#api-key", api_key)
        self.page.click("#connect-api-key")

    def connect_basic(self, username: str, password: str) -> None:
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        self.page.click("#connect-basic")

    def expect_connected(self, integration_id: str, connection_id: str) -> None:
        expect(self.page.locator("#status")).to_have_text(
            f"Connected: {integration_id} / {connection_id}", timeout=20_000)

    def expect_failed(self, error_type: str) -> None:
        expect(self.page.locator("#status")).to_have_text(
            re.compile(rf"^Failed: {re.escape(error_type)}:"), timeout=20_000)


class ConsentPage:
    """The provider's page where the end user allows or denies access."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def wait(self) -> ConsentPage:
        self.page.wait_for_selector("#allow", timeout=15_000)
        return self

    def allow(self) -> None:
        self.wait().page.click("#allow")

    def deny(self) -> None:
        self.wait().page.click("#deny")


class HostedConnectPage:
    """Terapi's own connect page, opened from a connect session's link."""

    def __init__(self, page: Page, link: str) -> None:
        self.page = page
        self.link = link

    def open(self) -> HostedConnectPage:
        self.page.goto(self.link)
        return self
