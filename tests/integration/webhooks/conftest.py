"""The webhooks service on MemoryBus and real PostgreSQL, a fake vault and a real receiver."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import inspect
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from terapi_common.db import create_pool
from terapi_common.errors import ServiceUnavailableError, TerapiError
from terapi_common.events import (
    GetWebhookTargets,
    SignWebhook,
    WebhookSignature,
    WebhookTargets,
)
from terapi_common.memory_bus import MemoryBus
from terapi_common.runtime import Runtime, build_app
from terapi_common.settings import TerapiSettings
from terapi_webhooks import app as webhooks_app

FAST_RETRIES = {
    "TERAPI_WEBHOOK_FIRST_RETRY_SECONDS": "0.01",
    "TERAPI_WEBHOOK_MAX_RETRY_SECONDS": "0.05",
    "TERAPI_WEBHOOK_MAX_ATTEMPTS": "3",
    "TERAPI_WEBHOOK_TIMEOUT_SECONDS": "3",
}


def new_environment_id() -> int:
    """An environment no other test uses."""
    return random.randint(1_000_000, 2**31 - 1)


async def wait_for(condition: Callable[[], Any], within: float = 5.0) -> None:
    """Poll until `condition()` (sync or async) is truthy, or fail at the deadline."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class FakeVault:
    """The vault's webhook commands: targets per environment and Standard Webhooks signing."""

    def __init__(self) -> None:
        self.secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.targets: dict[int, WebhookTargets] = {}
        self.target_requests = 0
        self.unavailable_times = 0
        self.sign_error: TerapiError | None = None
        self.sign_failures: list[TerapiError] = []  # raised once each, before signing

    def configure(
        self, environment_id: int, urls: list[str], *, connections: bool = True,
        failures: bool = True,
    ) -> None:
        self.targets[environment_id] = WebhookTargets(
            environment_name="production", urls=urls,
            send_new_connection_webhooks=connections, send_auth_failure_webhooks=failures,
        )

    async def get_targets(self, command: GetWebhookTargets) -> WebhookTargets:
        self.target_requests += 1
        if self.unavailable_times > 0:
            self.unavailable_times -= 1
            raise ServiceUnavailableError("vault busy")
        return self.targets[command.environment_id]

    async def sign(self, command: SignWebhook) -> WebhookSignature:
        if self.sign_error is not None:
            raise self.sign_error
        if self.sign_failures:
            raise self.sign_failures.pop(0)
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        signed = f"{command.webhook_id}.{command.timestamp}.{command.payload}".encode()
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        return WebhookSignature(signature="v1," + base64.b64encode(digest).decode())


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """The app's backend: records every webhook and answers from a script (then 200)."""

    url: str = ""
    answers: list[int] = field(default_factory=list)
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Received(dict(request.headers), await request.read()))
        self.arrived.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status)


@pytest.fixture
async def vault(bus: MemoryBus) -> FakeVault:
    fake = FakeVault()
    await bus.serve(GetWebhookTargets, fake.get_targets)
    await bus.serve(SignWebhook, fake.sign)
    return fake


@pytest.fixture
async def receiver(aiohttp_server) -> Receiver:
    recorder = Receiver()
    app = web.Application()
    app.router.add_post("/hook", recorder.handle)
    server = await aiohttp_server(app)
    recorder.url = str(server.make_url("/hook"))
    return recorder


StartWebhooks = Callable[..., Awaitable[Any]]


@pytest.fixture
def start_webhooks(
    aiohttp_client, database_url: str, bus: MemoryBus, key_ring, monkeypatch
) -> StartWebhooks:
    """Start the service; keyword arguments override `TERAPI_WEBHOOK_*` settings."""

    async def start(**overrides: str) -> Any:
        for name, value in {**FAST_RETRIES, **overrides}.items():
            monkeypatch.setenv(name if name.startswith("TERAPI_") else f"TERAPI_WEBHOOK_{name}",
                               value)

        async def runtime() -> AsyncIterator[Runtime]:
            pool = await create_pool(database_url, min_size=1, max_size=5)
            yield Runtime(settings=TerapiSettings(), pool=pool, bus=bus, key_ring=key_ring)
            await pool.close()

        return await aiohttp_client(build_app([webhooks_app], runtime))

    return start
