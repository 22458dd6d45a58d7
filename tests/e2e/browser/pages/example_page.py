"""Page objects: the quickstart app's page and the mock provider's consent page."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect


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
        """Go to the link and wait until the page has listed what it offers, or refused."""
        self.page.goto(self.link)
        shown = self.page.locator("#integrations button, #form, #status").filter(visible=True)
        expect(shown.first).to_be_visible(timeout=15_000)
        return self

    def offered(self) -> list[str]:
        """The integration ids the page lets the end user pick."""
        buttons = self.page.locator("#integrations button[data-integration-id]")
        expect(buttons.first).to_be_visible()
        return [buttons.nth(i).get_attribute("data-integration-id") or ""
                for i in range(buttons.count())]

    def choose(self, integration_id: str) -> HostedConnectPage:
        self.page.click(f'#integrations button[data-integration-id="{integration_id}"]')
        expect(self.page.locator("#form")).to_be_visible()
        return self

    def fill(self, name: str, value: str, *, group: str = "credentials") -> HostedConnectPage:
        self.field(name, group=group).fill(value)
        return self

    def submit(self) -> None:
        self.page.click("#submit")

    def back(self) -> HostedConnectPage:
        self.page.click("#back")
        expect(self.page.locator("#integrations")).to_be_visible()
        return self

    def field(self, name: str, *, group: str = "credentials") -> Locator:
        return self.page.locator(f'#fields input[data-group="{group}"][name="{name}"]')

    def continue_in_popup(self) -> Page:
        """Press the OAuth button and return the window the page opened at the provider."""
        with self.page.expect_popup() as popup:
            self.submit()
        return popup.value

    def expect_success(self, text: str) -> None:
        status = self.page.locator('#status[data-outcome="success"]')
        expect(status).to_be_visible(timeout=20_000)
        expect(status).to_contain_text(text)

    def expect_error(self, code: str) -> None:
        status = self.page.locator('#status[data-outcome="error"]')
        expect(status).to_be_visible(timeout=20_000)
        expect(status).to_contain_text(f"({code})")
