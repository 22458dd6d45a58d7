"""The gateway's rules: connect sessions, who may attempt what, and what an attempt emits."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from terapi_common.errors import TerapiError
from terapi_common.events import (
    AuthFailed,
    AuthMode,
    ConnectionOperation,
    ConnectionStored,
    EndUser,
    EnvironmentIdentity,
    ErrorInfo,
    Event,
    LogMessage,
    OperationFinished,
    OperationStarted,
)
from terapi_gateway.errors import (
    ConnectSessionExpiredError,
    ConnectSessionRequiredError,
    IntegrationNotAllowedError,
    InvalidConnectionIdError,
    InvalidCredentialsError,
    MissingCredentialsError,
)

SESSION_LIFETIME = timedelta(minutes=30)
SESSION_TOKEN_PREFIX = "cst_"
SESSION_DIGEST_PURPOSE = "connect_session"
CONNECTION_ID = re.compile(r"[A-Za-z0-9_.:@+\-]{1,255}")

IntegrationId = Annotated[str, Field(min_length=1, max_length=255)]


# ---------------------------------------------------------------- connect sessions


class ConnectSessionRequest(BaseModel):
    """What an app's backend sends to open a connect session."""

    model_config = ConfigDict(extra="forbid")

    end_user: EndUser
    allowed_integrations: list[IntegrationId] | None = Field(default=None, min_length=1)


class ConnectSession(BaseModel):
    """A short-lived grant to run flows for one end user of one environment."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    environment_id: int
    environment_name: str
    end_user: EndUser
    allowed_integrations: tuple[str, ...] | None
    expires_at: datetime
    created_at: datetime


def open_connect_session(
    identity: EnvironmentIdentity, request: ConnectSessionRequest, *, now: datetime
) -> ConnectSession:
    """A new session for the request's end user, valid for `SESSION_LIFETIME`."""
    allowed = request.allowed_integrations
    return ConnectSession(
        id=uuid.uuid4(),
        environment_id=identity.environment_id,
        environment_name=identity.environment_name,
        end_user=request.end_user,
        allowed_integrations=tuple(dict.fromkeys(allowed)) if allowed is not None else None,
        expires_at=now + SESSION_LIFETIME,
        created_at=now,
    )


# ---------------------------------------------------------------- callers


@dataclass(frozen=True)
class Caller:
    """Who runs a flow: an environment, narrowed by a connect session when one was used."""

    environment_id: int
    environment_name: str
    end_user: EndUser | None = None
    allowed_integrations: tuple[str, ...] | None = None


def caller_from_session(session: ConnectSession, *, now: datetime) -> Caller:
    """The caller a connect session stands for, once it is checked to be still open."""
    if now >= session.expires_at:
        raise ConnectSessionExpiredError("the connect session has expired; open a new one")
    return Caller(
        environment_id=session.environment_id,
        environment_name=session.environment_name,
        end_user=session.end_user,
        allowed_integrations=session.allowed_integrations,
    )


def caller_from_public_key(identity: EnvironmentIdentity) -> Caller:
    """The caller a public key stands for, unless the environment demands connect sessions."""
    if identity.connect_sessions_required:
        raise ConnectSessionRequiredError(
            "this environment requires a connect_session_token instead of a public_key"
        )
    return Caller(
        environment_id=identity.environment_id, environment_name=identity.environment_name
    )


def check_integration_allowed(caller: Caller, integration_id: str) -> None:
    """A connect session with an allow-list opens only the integrations on it."""
    allowed = caller.allowed_integrations
    if allowed is not None and integration_id not in allowed:
        raise IntegrationNotAllowedError(
            f"the connect session does not allow integration {integration_id!r}"
        )


def resolve_connection_id(raw: str | None) -> str:
    """The connection id the caller chose, checked, or a new UUID4 when none was given."""
    if raw is None:
        return str(uuid.uuid4())
    if not CONNECTION_ID.fullmatch(raw):
        raise InvalidConnectionIdError(
            "connection_id must be 1 to 255 characters of letters, digits and _ . : @ + -"
        )
    return raw


# ---------------------------------------------------------------- credentials


def required_text(fields: Mapping[str, Any], name: str) -> str:
    """A credential field that must be a non-blank string."""
    value = fields.get(name)
    if not isinstance(value, str) or not value.strip():
        raise MissingCredentialsError(f"{name} is required and must be a non-empty string")
    return _without_control_characters(value, name)


def optional_text(fields: Mapping[str, Any], name: str) -> str:
    """A credential field that may be absent or empty (read as "")."""
    value = fields.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MissingCredentialsError(f"{name} must be a string")
    return _without_control_characters(value, name)


def _without_control_characters(value: str, name: str) -> str:
    # Credentials end up in HTTP headers, where CR/LF would split the header (and aiohttp
    # refuses them); no provider issues a key with a control character in it.
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidCredentialsError(f"{name} must not contain control characters or line breaks")
    return value


def credentials_payload(auth_mode: AuthMode, values: Mapping[str, str]) -> dict[str, str]:
    """The plaintext the gateway seals for the vault: the mode's `type`, then its fields."""
    return {"type": auth_mode, **values}


# ---------------------------------------------------------------- operations


@dataclass(frozen=True)
class Attempt:
    """One authorization attempt, as the logs service will show it."""

    operation_id: str
    environment_id: int
    environment_name: str
    integration_id: str
    connection_id: str
    auth_mode: AuthMode
    end_user: EndUser | None
    started_at: datetime
    operation: ConnectionOperation = "creation"
    provider: str | None = None
    messages: tuple[LogMessage, ...] = field(default=())

    def log(
        self,
        message: str,
        *,
        at: datetime,
        level: Literal["info", "warning", "error"] = "info",
        meta: Mapping[str, Any] | None = None,
    ) -> Attempt:
        """This attempt with one more line in its story (never put a secret in it)."""
        line = LogMessage(at=at, level=level, message=message, meta=dict(meta or {}))
        return replace(self, messages=(*self.messages, line))

    def started(self) -> OperationStarted:
        """The event that shows a long attempt (an OAuth round trip) as running."""
        return OperationStarted(
            **self._operation_fields(), occurred_at=self.started_at, started_at=self.started_at
        )

    def succeeded(self, stored: ConnectionStored, *, now: datetime) -> list[Event]:
        """What to publish once the vault has stored the credentials."""
        verb = "created" if stored.operation == "creation" else "overridden"
        done = replace(
            self, operation=stored.operation, provider=stored.provider, auth_mode=stored.auth_mode
        ).log(f"credentials stored: connection {verb}", at=now)
        return [done._finished("success", now=now)]

    def failed(self, error: ErrorInfo, *, now: datetime) -> list[Event]:
        """What to publish when the attempt ends in `error`: the operation and an AuthFailed."""
        done = self.log(f"authorization failed: {error.message}", at=now, level="error")
        auth_failed = AuthFailed(
            environment_id=self.environment_id,
            occurred_at=now,
            environment=self.environment_name,
            integration_id=self.integration_id,
            connection_id=self.connection_id,
            provider=self.provider,
            auth_mode=self.auth_mode,
            end_user=self.end_user,
            operation=self.operation,
            operation_id=self.operation_id,
            error=error,
        )
        return [done._finished("failed", now=now, error=error), auth_failed]

    def _finished(
        self, status: Literal["success", "failed"], *, now: datetime, error: ErrorInfo | None = None
    ) -> OperationFinished:
        return OperationFinished(
            **self._operation_fields(),
            occurred_at=now,
            status=status,
            started_at=self.started_at,
            ended_at=now,
            error=error,
        )

    def _operation_fields(self) -> dict[str, Any]:
        return {
            "environment_id": self.environment_id,
            "operation_id": self.operation_id,
            "kind": "auth",
            "operation": self.operation,
            "integration_id": self.integration_id,
            "connection_id": self.connection_id,
            "provider": self.provider,
            "auth_mode": self.auth_mode,
            "end_user": self.end_user,
            "messages": list(self.messages),
        }


def begin_attempt(
    caller: Caller,
    *,
    integration_id: str,
    connection_id: str,
    auth_mode: AuthMode,
    now: datetime,
) -> Attempt:
    """A new attempt with a fresh operation id, for an allowed integration."""
    check_integration_allowed(caller, integration_id)
    return Attempt(
        operation_id=str(uuid.uuid4()),
        environment_id=caller.environment_id,
        environment_name=caller.environment_name,
        integration_id=integration_id,
        connection_id=connection_id,
        auth_mode=auth_mode,
        end_user=caller.end_user,
        started_at=now,
    )


def error_info(error: Exception) -> ErrorInfo:
    """How a failure reads in events: its code and message, or a bare internal error."""
    if isinstance(error, TerapiError):
        return ErrorInfo(code=error.code, message=error.message)
    return ErrorInfo(code="internal_error", message="internal error")
