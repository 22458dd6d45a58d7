"""The gateway's use cases: open connect sessions, authorize callers, store typed credentials."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import aiohttp
import structlog

from terapi_common.auth import KeyAuthenticator
from terapi_common.bus import BackgroundPublisher, Bus
from terapi_common.cache import TtlCache
from terapi_common.clock import Clock
from terapi_common.crypto import KeyRing, connection_aad, random_token
from terapi_common.errors import NotFoundError, ProviderError, UnauthorizedError
from terapi_common.events import (
    ConnectionStored,
    EnvironmentChanged,
    EnvironmentIdentity,
    Event,
    IntegrationChanged,
    IntegrationInfo,
    StoreConnection,
)
from terapi_common.logging import log_soon
from terapi_common.providers import Catalog
from terapi_gateway import domain, exchange
from terapi_gateway.domain import Attempt, Caller, ConnectSession, ConnectSessionRequest
from terapi_gateway.errors import (
    InvalidConnectSessionTokenError,
    InvalidPublicKeyError,
    MissingAuthTokenError,
)
from terapi_gateway.integrations import Integration, load_integration
from terapi_gateway.providers import CredentialsMode
from terapi_gateway.providers.oauth2 import OAuthClient
from terapi_gateway.store import Store

log = structlog.get_logger("terapi.gateway")


# How long the vault's integration facts are reused; its change events cut this short.
INTEGRATION_CACHE_SECONDS = 10.0
# A connect session never changes once opened (only its expiry ends it), so a replica may
# keep the ones it has seen, under the newest key's digest; the bound is memory, not
# staleness.
SESSION_CACHE_SECONDS = 300.0


@dataclass(frozen=True)
class Gateway:
    """What the use cases run on; built once per process by the app's cleanup context."""

    store: Store
    bus: Bus
    key_ring: KeyRing
    clock: Clock
    keys: KeyAuthenticator
    public_base: str
    catalog: Catalog
    http: aiohttp.ClientSession
    publisher: BackgroundPublisher
    kick: Callable[[], None] = lambda: None  # wakes the outbox relay
    integrations: TtlCache[IntegrationInfo] = field(
        default_factory=lambda: TtlCache(ttl=INTEGRATION_CACHE_SECONDS))
    sessions: TtlCache[ConnectSession] = field(
        default_factory=lambda: TtlCache(ttl=SESSION_CACHE_SECONDS))

    @property
    def default_callback_url(self) -> str:
        return f"{self.public_base}/oauth/callback"


@dataclass(frozen=True)
class OpenedSession:
    """A new connect session as its creator sees it: the token is shown this once."""

    token: str
    expires_at: datetime
    connect_link: str


async def open_connect_session(
    gateway: Gateway, identity: EnvironmentIdentity, request: ConnectSessionRequest
) -> OpenedSession:
    """Open a connect session for an end user of the secret key's environment."""
    session = domain.open_connect_session(identity, request, now=gateway.clock.now())
    token = random_token(domain.SESSION_TOKEN_PREFIX)
    digest = _session_digest(gateway, token)
    await gateway.store.add_session(session, token_digest=digest)
    gateway.sessions.put(digest, session)
    log.info(
        "gateway.connect_session_opened",
        environment_id=session.environment_id,
        session_id=str(session.id),
        end_user_id=session.end_user.id,
    )
    link = f"{gateway.public_base}/connect/{token}"
    return OpenedSession(token=token, expires_at=session.expires_at, connect_link=link)


async def authorize_caller(
    gateway: Gateway, *, connect_session_token: str | None, public_key: str | None
) -> Caller:
    """Who runs the flow: the connect session if one is given, else the public key."""
    if connect_session_token:
        session = await _find_session(gateway, connect_session_token)
        if session is None:
            raise InvalidConnectSessionTokenError("the connect session token is not valid")
        return domain.caller_from_session(session, now=gateway.clock.now())
    if public_key:
        return domain.caller_from_public_key(await _resolve_public_key(gateway, public_key))
    raise MissingAuthTokenError(
        "send a connect_session_token (preferred) or a public_key query parameter"
    )


async def connect_with_credentials(
    gateway: Gateway,
    caller: Caller,
    *,
    mode: CredentialsMode,
    integration_id: str,
    connection_id: str | None,
    fields: Mapping[str, Any],
    connection_config: Mapping[str, Any],
    scopes: tuple[str, ...] | None = None,
) -> ConnectionStored:
    """Check the end user's credentials, have the vault store them, and report the attempt."""
    attempt = domain.begin_attempt(
        caller,
        integration_id=integration_id,
        connection_id=domain.resolve_connection_id(connection_id),
        auth_mode=mode.name,
        now=gateway.clock.now(),
    )
    attempt = attempt.log(f"{mode.title} connection requested", at=attempt.started_at)
    bind_attempt(attempt)
    try:
        values = mode.credentials(fields)
        integration = await load_integration(
            gateway, attempt.environment_id, integration_id, modes=[mode.name]
        )
        attempt = replace(attempt, provider=integration.info.provider)
        config = integration.provider.check_connection_config(connection_config)
        credentials, attempt = await _obtain(gateway, attempt, integration, values, config, scopes)
        stored = await store_credentials(gateway, attempt, credentials, connection_config=config)
    except Exception as exc:
        await report_failure(gateway, attempt, exc)
        raise
    await report_success(gateway, attempt, stored)
    return stored


async def _obtain(
    gateway: Gateway, attempt: Attempt, integration: Integration, values: dict[str, Any],
    config: dict[str, str], scopes: tuple[str, ...] | None,
) -> tuple[dict[str, Any], Attempt]:
    """The credentials to store: checked with the provider, or a token fetched for them."""
    provider, now = integration.provider, gateway.clock.now
    if attempt.auth_mode != "OAUTH2_CC":
        checked = provider.check_credentials({k: v for k, v in values.items() if k != "type"}
                                             ) if provider.credentials else {}
        values = {**values, **checked}
        if provider.verification is not None:
            await exchange.verify_credentials(
                gateway.http, provider, credentials=values, connection_config=config
            )
            attempt = attempt.log(f"{provider.display_name} accepted the credentials", at=now())
        return values, attempt
    client = (
        OAuthClient(values["client_id"], values["client_secret"]) if values
        else exchange.require_client(integration.client)
    )
    requested = scopes or tuple(integration.info.scopes or provider.default_scopes)
    credentials = await exchange.client_credentials_token(
        gateway.http, provider, client, scopes=requested, connection_config=config,
        now=now(),
    )
    if values:  # the refresher needs a per-connection client to fetch the next token
        credentials |= {"client_id": client.client_id, "client_secret": client.client_secret}
    return credentials, attempt.log("access token fetched with client credentials", at=now())


def bind_attempt(attempt: Attempt) -> None:
    """Put the attempt's ids on every log line of this request."""
    structlog.contextvars.bind_contextvars(
        environment_id=attempt.environment_id,
        integration_id=attempt.integration_id,
        connection_id=attempt.connection_id,
        operation_id=attempt.operation_id,
    )


async def store_credentials(
    gateway: Gateway, attempt: Attempt, credentials: dict[str, Any], *,
    connection_config: Mapping[str, Any], expires_at: datetime | None = None,
) -> ConnectionStored:
    """Seal the credentials for this connection and have the vault store them."""
    aad = connection_aad(attempt.environment_id, attempt.integration_id, attempt.connection_id)
    if expires_at is None and isinstance(credentials.get("expires_at"), str):
        expires_at = datetime.fromisoformat(credentials["expires_at"])
    command = StoreConnection(
        environment_id=attempt.environment_id,
        integration_id=attempt.integration_id,
        connection_id=attempt.connection_id,
        auth_mode=attempt.auth_mode,
        sealed_credentials=gateway.key_ring.seal(credentials, aad=aad),
        connection_config=dict(connection_config),
        end_user=attempt.end_user,
        operation_id=attempt.operation_id,
        expires_at=expires_at,
    )
    stored = await gateway.bus.request(command)
    assert isinstance(stored, ConnectionStored)
    return stored


async def report_failure(gateway: Gateway, attempt: Attempt, exc: Exception) -> None:
    """Publish the failed operation and AuthFailed, and log the outcome (never a secret)."""
    error = domain.error_info(exc)
    if isinstance(exc, ProviderError) and exc.provider_error:
        # The provider's own error fields, for whoever reads the operation in the logs.
        meta = {"provider_error": exc.provider_error,
                "provider_error_description": exc.provider_error_description}
        attempt = attempt.log("the provider answered with an error", at=gateway.clock.now(),
                              level="warning", meta={k: v for k, v in meta.items() if v})
    await report_durably(gateway, attempt.failed(error, now=gateway.clock.now()))
    log.info("gateway.auth_attempt", outcome="failed", auth_mode=attempt.auth_mode,
             error=error.code)


async def report_success(gateway: Gateway, attempt: Attempt, stored: ConnectionStored) -> None:
    """Publish the finished operation and log the outcome, both after the answer has left
    (the vault has committed the outcome; these only record it)."""
    finished_at = gateway.clock.now()
    gateway.publisher.publish_soon(lambda: attempt.succeeded(stored, now=finished_at))
    log_soon(log.info, "gateway.auth_attempt", outcome="success", auth_mode=attempt.auth_mode,
             operation=stored.operation)


async def report_durably(gateway: Gateway, events: Sequence[Event]) -> None:
    """A failure's events (its auth.failed webhook among them) are the only record of it:
    they go through the outbox, which keeps them until the broker has them."""
    try:
        await gateway.store.queue_events(events)
    except Exception:  # noqa: BLE001  # the database is down too: try the broker directly
        log.exception("gateway.outbox_unavailable")
        gateway.publisher.publish_soon(events)
        return
    gateway.kick()


async def on_integration_changed(event: IntegrationChanged, *, gateway: Gateway) -> None:
    """The vault changed or deleted an integration: stop using what was cached of it."""
    gateway.integrations.forget((event.environment_id, event.integration_id))


async def on_environment_changed(event: EnvironmentChanged, *, gateway: Gateway) -> None:
    """The vault changed an environment's settings (require_connect_sessions among them):
    the keys' cached identities carry the old ones."""
    gateway.keys.forget_environment(event.environment_id)


async def _resolve_public_key(gateway: Gateway, public_key: str) -> EnvironmentIdentity:
    try:
        return await gateway.keys.by_public_key(public_key)
    except (UnauthorizedError, NotFoundError):
        raise InvalidPublicKeyError("the public key belongs to no environment") from None


async def _find_session(gateway: Gateway, token: str) -> ConnectSession | None:
    # The row may hold an older key's digest: the session was opened before the newest
    # key version was added, and lives on until it expires.
    digests = gateway.key_ring.digests(token, purpose=domain.SESSION_DIGEST_PURPOSE)
    session = gateway.sessions.get(digests[0])
    if session is None:
        session = await gateway.store.find_session(digests)
        if session is not None:
            gateway.sessions.put(digests[0], session)
    return session


def _session_digest(gateway: Gateway, token: str) -> str:
    return gateway.key_ring.digest(token, purpose=domain.SESSION_DIGEST_PURPOSE)
