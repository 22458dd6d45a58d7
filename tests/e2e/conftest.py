"""End-to-end fixtures: Terapi's processes, a fresh RabbitMQ vhost and a webhook receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from terapi_common.crypto import generate_key
from tests.conftest import fresh_database, fresh_vhost
from tests.e2e.catalog import mock_catalog
from tests.e2e.stack import Stack, free_port, start_single_process, start_split_stack
from tests.support.provider_thread import RunningProvider, start_provider

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.fixture(scope="session")
def amqp_vhost_url() -> Iterator[str]:
    """A RabbitMQ vhost of this stack's own, so durable queues start empty."""
    with fresh_vhost("terapi-e2e") as url:
        yield url


@pytest.fixture(scope="session")
def mock_provider() -> Iterator[RunningProvider]:
    """The OAuth provider every stack is pointed at, alive for the whole session."""
    running = start_provider(free_port())
    yield running
    running.stop()


@pytest.fixture(scope="session")
def provider_env(mock_provider: RunningProvider, tmp_path_factory) -> dict[str, str]:
    """Settings that add the mock provider's entries to the catalog."""
    path = tmp_path_factory.mktemp("catalog") / "providers.yaml"
    path.write_text(mock_catalog(mock_provider.base_url))
    return {"TERAPI_PROVIDERS_PATH": str(path)}


@pytest.fixture(scope="session")
def split_stack(amqp_vhost_url: str, provider_env: dict[str, str], tmp_path_factory
                ) -> Iterator[Stack]:
    with fresh_database() as database_url:
        stack = start_split_stack(
            tmp_path_factory.mktemp("split"), database_url=database_url,
            amqp_url=amqp_vhost_url, key=generate_key(), extra_env=provider_env,
        )
        try:
            yield stack
        finally:
            codes = stack.stop()
            _keep_logs(stack, "split")
    assert all(code == 0 for code in codes.values()), f"unclean exits: {codes}"


@pytest.fixture(scope="session")
def single_stack(provider_env: dict[str, str], tmp_path_factory) -> Iterator[Stack]:
    stack = start_single_process(tmp_path_factory.mktemp("single"), extra_env=provider_env)
    yield stack
    codes = stack.stop()
    _keep_logs(stack, "single")
    assert all(code == 0 for code in codes.values()), f"unclean exit: {codes}"


def _keep_logs(stack: Stack, name: str) -> None:
    target = ARTIFACTS / "e2e" / name
    target.mkdir(parents=True, exist_ok=True)
    for path in stack.log_dir.glob("*.log"):
        (target / path.name).write_bytes(path.read_bytes())


@pytest.fixture(params=["split", "single"])
def stack(request: pytest.FixtureRequest) -> Stack:
    """The same flows run on five processes and on `terapi up`."""
    return request.getfixturevalue(f"{request.param}_stack")


@dataclass
class Receiver:
    """The app's backend: records every webhook it is sent."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def wait_for(self, predicate, timeout: float = 15.0) -> tuple[dict[str, str], bytes]:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for headers, body in self.received:
                if predicate(headers, body):
                    return headers, body
            await asyncio.sleep(0.05)
        raise AssertionError(f"no matching webhook in {timeout}s; got {len(self.received)}")


@pytest.fixture
async def receiver(aiohttp_server) -> AsyncIterator[Receiver]:
    app = web.Application()
    holder: list[Receiver] = []

    async def hook(request: web.Request) -> web.Response:
        holder[0].received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app.router.add_post("/webhooks", hook)
    server = await aiohttp_server(app)
    holder.append(Receiver(url=f"http://127.0.0.1:{server.port}/webhooks"))
    yield holder[0]
