"""The gateway's use cases: open connect sessions, authorize callers, store typed credentials."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from terapi_common.auth import KeyAuthenticator
from terapi_common.bus import Bus
from terapi_common.clock import Clock
from terapi_common.crypto import KeyRing, connection_aad, random_token
from terapi_common.errors import NotFoundError, UnauthorizedError
from terapi_common.events import (
    ConnectionStored,
    EnvironmentIdentity,
    Event,
    StoreConnection,
)

from terapi_gateway import domain
from terapi_gateway.domain import Attempt, Caller, ConnectSessionRequest
from terapi_gateway.errors import (
    InvalidConnectSessionTokenError,
    InvalidPublicKeyError,
    MissingAuthTokenError,
)
from terapi_gateway.providers import CredentialsMode
from terapi_gateway.store import Store

log = structlog.get_logger("terapi.gateway")


@dataclass(frozen=True)
class Gateway:
    """What the use cases run on; built once per process by the app's cleanup context."""

    store: Store
    bus: Bus
    key_ring: KeyRing
    clock: Clock
    keys: KeyAuthenticator
    public_base: str


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
    await gateway.store.add_session(session, token_digest=_session_digest(gateway, token))
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
        session = await gateway.store.find_session(_session_digest(gateway, connect_session_token))
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
) -> ConnectionStored:
    """Seal the end user's credentials, have the vault store them, and report the attempt."""
    attempt = domain.begin_attempt(
        caller,
        integration_id=integration_id,
        connection_id=domain.resolve_connection_id(connection_id),
        auth_mode=mode.name,
        now=gateway.clock.now(),
    )
    attempt = attempt.log(f"{mode.title} connection requested", at=attempt.started_at)
    structlog.contextvars.bind_contextvars(
        environment_id=attempt.environment_id,
        integration_id=attempt.integration_id,
        connection_id=attempt.connection_id,
        operation_id=attempt.operation_id,
    )
    try:
        stored = await _store_credentials(gateway, attempt, mode.credentials(fields))
    except Exception as exc:
        error = domain.error_info(exc)
        await _report(gateway, attempt.failed(error, now=gateway.clock.now()))
        log.info("gateway.auth_attempt", outcome="failed", auth_mode=mode.name, error=error.code)
        raise
    await _report(gateway, attempt.succeeded(stored, now=gateway.clock.now()))
    log.info(
        "gateway.auth_attempt", outcome="success", auth_mode=mode.name, operation=stored.operation
    )
    return stored


async def _store_credentials(
    gateway: Gateway, attempt: Attempt, credentials: dict[str, Any]
) -> ConnectionStored:
    aad = connection_aad(attempt.environment_id, attempt.integration_id, attempt.connection_id)
    command = StoreConnection(
        environment_id=attempt.environment_id,
        integration_id=attempt.integration_id,
        connection_id=attempt.connection_id,
        auth_mode=attempt.auth_mode,
        sealed_credentials=gateway.key_ring.seal(credentials, aad=aad),
        end_user=attempt.end_user,
        operation_id=attempt.operation_id,
    )
    stored = await gateway.bus.request(command)
    assert isinstance(stored, ConnectionStored)
    return stored


async def _report(gateway: Gateway, events: Sequence[Event]) -> None:
    """Publish an attempt's events before answering; a broker hiccup must not undo the answer."""
    try:
        await gateway.bus.publish_many(events)
    except Exception:  # noqa: BLE001  # the outcome stands; only its log entry is lost
        log.exception("gateway.operation_not_published", events=[e.type for e in events])


async def _resolve_public_key(gateway: Gateway, public_key: str) -> EnvironmentIdentity:
    try:
        return await gateway.keys.by_public_key(public_key)
    except (UnauthorizedError, NotFoundError):
        raise InvalidPublicKeyError("the public key belongs to no environment") from None


def _session_digest(gateway: Gateway, token: str) -> str:
    return gateway.key_ring.digest(token, purpose=domain.SESSION_DIGEST_PURPOSE)
