"""Browser fixtures: Debian's Chromium driven by Playwright, and the quickstart app."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.stack import Stack, free_port
from tests.support.mock_provider import Behaviour

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = os.environ.get("TERAPI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@pytest.fixture
def browser() -> Iterator[object]:
    """A fresh Chromium per test; Playwright's sync API holds an event loop while it runs,
    so it must not outlive the test (the async tests after it need the thread's loop)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}; scripts/test.sh installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    yield context.new_page()
    context.close()


class ExampleApp:
    """The quickstart app's backend, run as a process next to Terapi."""

    def __init__(self, url: str, stack: Stack) -> None:
        self.url = url
        self.stack = stack

    def webhooks(self) -> list[dict]:
        return httpx.get(f"{self.url}/api/webhooks").json()["data"]

    def wait_for_webhook(self, connection_id: str, timeout: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for payload in self.webhooks():
                if payload.get("connection_id") == connection_id:
                    return payload
            time.sleep(0.1)
        raise AssertionError(f"no webhook for {connection_id}")


@pytest.fixture(scope="session")
def example_app(split_stack: Stack) -> Iterator[ExampleApp]:
    port = free_port()
    env = {**os.environ, "TERAPI_HOST": split_stack.gateway, "TERAPI_API_URL": split_stack.vault,
           "TERAPI_SECRET_KEY": split_stack.keys["secret_key"],
           "TERAPI_WEBHOOK_SECRET": split_stack.keys["webhook_secret"], "PORT": str(port)}
    process = subprocess.Popen(  # noqa: S603  # our own example, fixed arguments
        [sys.executable, str(ROOT / "examples" / "quickstart" / "server.py")], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    httpx.post(f"{url}/api/use-for-webhooks").raise_for_status()
    yield ExampleApp(url, split_stack)
    process.terminate()
    process.wait(10)


@pytest.fixture
def consenting_provider(mock_provider):
    """The mock provider with a real consent page (no auto-approval)."""
    mock_provider.provider.behaviour = Behaviour()
    return mock_provider.provider


def create_integration(stack: Stack, provider: str, client=None) -> str:
    integration_id = f"{provider}-{uuid.uuid4().hex[:6]}"
    body: dict = {"integration_id": integration_id, "provider": provider}
    if client is not None:
        body["credentials"] = {"type": "OAUTH2", "client_id": client.client_id,
                               "client_secret": client.client_secret, "scopes": ["read"]}
    response = httpx.post(f"{stack.vault}/integrations", json=body,
                          headers={"Authorization": f"Bearer {stack.keys['secret_key']}"})
    response.raise_for_status()
    return integration_id
