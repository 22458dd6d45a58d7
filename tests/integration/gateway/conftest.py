"""The gateway on a real database, with the vault played by a fake on the same bus."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from terapi_common.clock import FakeClock
from terapi_common.crypto import KeyRing, connection_aad, random_token, sha256_hex
from terapi_common.db import create_pool
from terapi_common.errors import InvalidInputError, NotFoundError, UnauthorizedError
from terapi_common.events import (
    AuthenticateSecretKey,
    AuthFailed,
    AuthMode,
    ConnectionStored,
    EnvironmentIdentity,
    Event,
    GetIntegration,
    IntegrationInfo,
    IntegrationList,
    ListIntegrations,
    OperationFinished,
    OperationStarted,
    ResolvePublicKey,
    StoreConnection,
)
from terapi_common.memory_bus import MemoryBus
from terapi_common.runtime import Runtime, build_app
from terapi_common.settings import TerapiSettings
from terapi_gateway import app as gateway_app
from tests.conftest import unique
from tests.integration.gateway.catalog import test_catalog
from tests.support.mock_provider import Behaviour, MockProvider

PUBLIC_URL = "https://terapi.example.com"


@dataclass(frozen=True)
class Environment:
    """An environment the fake vault knows, with its keys."""

    id: int
    name: str
    secret_key: str
    public_key: str


@dataclass(frozen=True)
class FakeIntegration:
    provider: str
    auth_mode: AuthMode
    scopes: list[str]
    config: dict[str, Any] | None
    callback_url: str | None
    display_name: str | None


@dataclass
class FakeVault:
    """The vault's side of the commands the gateway sends, kept in memory."""

    key_ring: KeyRing
    identities: dict[str, EnvironmentIdentity] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    integrations: dict[tuple[int, str], FakeIntegration] = field(default_factory=dict)
    stored: list[tuple[StoreConnection, Any]] = field(default_factory=list)
    unknown_public_key_status: int = 401

    def add_environment(self, *, connect_sessions_required: bool = False) -> Environment:
        env = Environment(
            # Unique across the run: sessions of every test share one table.
            id=uuid.uuid4().int % 2_000_000_000 + 1,
            name=unique("env"),
            secret_key=random_token("sk_"),
            public_key=random_token("pk_", 16),
        )
        identity = EnvironmentIdentity(
            environment_id=env.id,
            environment_name=env.name,
            connect_sessions_required=connect_sessions_required,
        )
        self.identities[f"s:{sha256_hex(env.secret_key)}"] = identity
        self.identities[f"p:{env.public_key}"] = identity
        self.names[env.id] = env.name
        return env

    def require_connect_sessions(self, env: Environment) -> None:
        for key in (f"s:{sha256_hex(env.secret_key)}", f"p:{env.public_key}"):
            self.identities[key] = self.identities[key].model_copy(
                update={"connect_sessions_required": True})

    def add_integration(
        self, env: Environment, provider: str, auth_mode: AuthMode, *, client: Any = None,
        scopes: list[str] | None = None, provider_config: dict[str, Any] | None = None,
        callback_url: str | None = f"{PUBLIC_URL}/oauth/callback",
        display_name: str | None = None,
    ) -> str:
        """An integration; `client` is the mock provider's client (id and secret) if any."""
        integration_id = unique(provider)
        config = None
        if client is not None:
            config = {"client_id": client.client_id, "client_secret": client.client_secret,
                      "provider_config": provider_config or {}}
        self.integrations[(env.id, integration_id)] = FakeIntegration(
            provider, auth_mode, scopes or [], config, callback_url, display_name
        )
        return integration_id

    def _integration(self, environment_id: int, integration_id: str) -> FakeIntegration:
        found = self.integrations.get((environment_id, integration_id))
        if found is None:
            raise NotFoundError("no such integration", code="integration_not_found")
        return found

    def _info(self, environment_id: int, integration_id: str) -> IntegrationInfo:
        found = self._integration(environment_id, integration_id)
        sealed = None
        if found.config is not None:
            sealed = self.key_ring.seal(
                found.config, aad=f"integration:{environment_id}:{integration_id}"
            )
        return IntegrationInfo(
            integration_id=integration_id, provider=found.provider, auth_mode=found.auth_mode,
            environment_name=self.names[environment_id], display_name=found.display_name,
            scopes=found.scopes, callback_url=found.callback_url, sealed_config=sealed,
        )

    async def get_integration(self, command: GetIntegration) -> IntegrationInfo:
        return self._info(command.environment_id, command.integration_id)

    async def list_integrations(self, command: ListIntegrations) -> IntegrationList:
        names = [i for env, i in self.integrations if env == command.environment_id]
        if command.integration_ids is not None:
            names = [i for i in names if i in command.integration_ids]
        return IntegrationList(
            integrations=[self._info(command.environment_id, i) for i in sorted(names)]
        )

    async def authenticate_secret_key(self, command: AuthenticateSecretKey) -> EnvironmentIdentity:
        identity = self.identities.get(f"s:{command.key_digest}")
        if identity is None:
            raise UnauthorizedError("unknown secret key", code="invalid_secret_key")
        return identity

    async def resolve_public_key(self, command: ResolvePublicKey) -> EnvironmentIdentity:
        identity = self.identities.get(f"p:{command.public_key}")
        if identity is not None:
            return identity
        if self.unknown_public_key_status == 404:
            raise NotFoundError("no environment has this public key", code="public_key_not_found")
        raise UnauthorizedError("unknown public key", code="invalid_public_key")

    async def store_connection(self, command: StoreConnection) -> ConnectionStored:
        found = self._integration(command.environment_id, command.integration_id)
        provider, auth_mode = found.provider, found.auth_mode
        if auth_mode != command.auth_mode:
            raise InvalidInputError(f"integration uses {auth_mode}", code="invalid_auth_mode")
        aad = connection_aad(command.environment_id, command.integration_id, command.connection_id)
        credentials = self.key_ring.unseal(command.sealed_credentials, aad=aad)
        seen = any(
            (c.environment_id, c.integration_id, c.connection_id)
            == (command.environment_id, command.integration_id, command.connection_id)
            for c, _ in self.stored
        )
        self.stored.append((command, credentials))
        return ConnectionStored(
            connection_id=command.connection_id,
            integration_id=command.integration_id,
            provider=provider,
            auth_mode=auth_mode,
            environment_name=self.names[command.environment_id],
            operation="override" if seen else "creation",
        )


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def vault(bus: MemoryBus, key_ring: KeyRing) -> FakeVault:
    fake = FakeVault(key_ring)
    await bus.serve(AuthenticateSecretKey, fake.authenticate_secret_key)
    await bus.serve(ResolvePublicKey, fake.resolve_public_key)
    await bus.serve(StoreConnection, fake.store_connection)
    await bus.serve(GetIntegration, fake.get_integration)
    await bus.serve(ListIntegrations, fake.list_integrations)
    return fake


@pytest.fixture
async def provider(aiohttp_server) -> MockProvider:
    """The local OAuth provider, served on 127.0.0.1; `provider.base_url` is its root."""
    mock = MockProvider()
    mock.behaviour = Behaviour(auto_approve=True)
    server = await aiohttp_server(mock.app())
    mock.base_url = str(server.make_url("")).rstrip("/")  # type: ignore[attr-defined]
    return mock


@pytest.fixture
def providers_path(tmp_path, provider) -> str:
    """A catalog file whose entries point at the local provider."""
    path = tmp_path / "providers.yaml"
    path.write_text(test_catalog(provider.base_url))
    return str(path)


@pytest.fixture
async def published(bus: MemoryBus) -> list[Event]:
    """Every operation and auth failure event the gateway publishes, as delivered."""
    got: list[Event] = []

    async def collect(event: Event) -> None:
        got.append(event)

    await bus.subscribe(
        unique("terapi.test.gateway"), [OperationStarted, OperationFinished, AuthFailed], collect
    )
    return got


async def gateway_client(aiohttp_client, database_url, bus, key_ring, clock, providers_path):
    async def runtime() -> AsyncIterator[Runtime]:
        pool = await create_pool(database_url, min_size=1, max_size=4)
        try:
            yield Runtime(
                settings=TerapiSettings(public_url=PUBLIC_URL, providers_path=providers_path),
                pool=pool,
                bus=bus,
                key_ring=key_ring,
                clock=clock,
            )
        finally:
            await pool.close()

    server = TestServer(build_app([gateway_app], runtime))
    await server.start_server()
    # Like a browser: keeps the gateway's cookies, `Secure` ones included (the public URL
    # is https, the test server plain http on 127.0.0.1).
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[server.make_url("/")])
    return await aiohttp_client(server, cookie_jar=jar)


@pytest.fixture
async def client(aiohttp_client, database_url, bus, key_ring, clock, vault, providers_path):
    return await gateway_client(aiohttp_client, database_url, bus, key_ring, clock,
                                 providers_path)


@pytest.fixture
async def other_replica(aiohttp_client, database_url, bus, key_ring, clock, vault,
                        providers_path):
    """A second gateway process on the same database: nothing cached from `client`."""
    return await gateway_client(aiohttp_client, database_url, bus, key_ring, clock,
                                 providers_path)


async def open_session(client, env: Environment, **body: Any) -> str:
    """Open a connect session as the app's backend would; returns its token."""
    payload = {"end_user": {"id": unique("user")}, **body}
    response = await client.post(
        "/connect/sessions", json=payload, headers={"Authorization": f"Bearer {env.secret_key}"}
    )
    assert response.status == 201, await response.text()
    return (await response.json())["token"]


async def error_code(response) -> str:
    return (await response.json())["error"]["code"]
