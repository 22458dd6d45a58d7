"""The whole vocabulary on the bus: events (past tense) and request/reply commands.

Events carry ids and metadata, never a secret: anything secret that must cross the bus
travels as a `sealed_*` field, encrypted with the transit key (see `crypto.Sealer`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, field_validator

from terapi_common.errors import InvalidInputError


def utc_now() -> datetime:
    return datetime.now(UTC)


class Message(BaseModel):
    """A frozen model that ignores fields it does not know, so producers may add some."""

    model_config = ConfigDict(frozen=True, extra="ignore")


# ---------------------------------------------------------------- shared value types


class EndUser(Message):
    """The app's own user that an authorization is made for."""

    id: str = Field(min_length=1, max_length=255)
    email: str | None = Field(default=None, max_length=320)
    display_name: str | None = Field(default=None, max_length=255)


# C0 control characters but tab and newline. Their text may echo a provider's `error=`
# parameter: NUL cannot be stored in PostgreSQL (text or jsonb), and the others garble logs.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f]")


def _replace_control_characters(text: str) -> str:
    """`text` with each control character (bar tab and newline) shown as U+FFFD."""
    return _CONTROL_CHARACTERS.sub("\ufffd", text)


class ErrorInfo(Message):
    """A failure as clients see it: a stable code and a human message."""

    code: str
    message: str

    @field_validator("code", "message")
    @classmethod
    def _printable(cls, value: str) -> str:
        return _replace_control_characters(value)


class LogMessage(Message):
    """One line in an operation's story, shown in the Logs view."""

    at: datetime = Field(default_factory=utc_now)
    level: Literal["debug", "info", "warning", "error"] = "info"
    message: str
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("message")
    @classmethod
    def _printable(cls, value: str) -> str:
        return _replace_control_characters(value)


AuthMode = Literal[
    "API_KEY", "BASIC", "OAUTH2", "OAUTH1", "OAUTH2_CC", "APP", "CUSTOM", "NONE"
]
ConnectionOperation = Literal["creation", "override", "refresh"]


# ---------------------------------------------------------------- events


class Event(Message):
    """Envelope shared by every event; `type` is also its routing key."""

    type: ClassVar[str] = ""
    version: ClassVar[int] = 1

    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: datetime = Field(default_factory=utc_now)
    environment_id: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.type:
            if cls.type in EVENT_TYPES:
                raise TypeError(f"event type {cls.type} defined twice")
            EVENT_TYPES[cls.type] = cls

    def to_wire(self) -> dict[str, Any]:
        """The JSON envelope: id, type, version, time, environment and the data."""
        data = self.model_dump(
            mode="json", exclude={"event_id", "occurred_at", "environment_id"}
        )
        return {
            "event_id": str(self.event_id),
            "type": self.type,
            "version": self.version,
            "occurred_at": self.occurred_at.isoformat(),
            "environment_id": self.environment_id,
            "data": data,
        }


EVENT_TYPES: dict[str, type[Event]] = {}


def event_from_wire(body: dict[str, Any]) -> Event:
    """Validate an envelope into its event model; unknown types are invalid input."""
    event_type = body.get("type")
    cls = EVENT_TYPES.get(event_type) if isinstance(event_type, str) else None
    if cls is None:
        raise InvalidInputError(f"unknown event type {event_type!r}", code="unknown_event_type")
    data = body.get("data")
    if not isinstance(data, dict):
        raise InvalidInputError("event data must be an object", code="invalid_event")
    fields = {
        **data,
        "event_id": body.get("event_id"),
        "occurred_at": body.get("occurred_at"),
        "environment_id": body.get("environment_id"),
    }
    return cls.model_validate(fields)


class ConnectionEvent(Event):
    """Fields every connection lifecycle event shares."""

    connection_id: str
    integration_id: str
    provider: str
    auth_mode: AuthMode
    environment: str
    end_user: EndUser | None = None
    operation_id: str | None = None


class ConnectionCreated(ConnectionEvent):
    """A connection was authorized for the first time."""

    type: ClassVar[str] = "connection.created"
    operation: ConnectionOperation = "creation"
    expires_at: datetime | None = None


class ConnectionUpdated(ConnectionEvent):
    """An existing connection got new credentials (re-authorized or refreshed)."""

    type: ClassVar[str] = "connection.updated"
    operation: ConnectionOperation = "override"
    expires_at: datetime | None = None


class ConnectionDeleted(ConnectionEvent):
    """A connection and its credentials were removed."""

    type: ClassVar[str] = "connection.deleted"


class AuthFailed(Event):
    """An authorization attempt ended in failure; nothing was stored."""

    type: ClassVar[str] = "auth.failed"
    integration_id: str
    connection_id: str | None = None
    provider: str | None = None
    auth_mode: AuthMode | None = None
    environment: str
    end_user: EndUser | None = None
    operation: ConnectionOperation = "creation"
    operation_id: str | None = None
    error: ErrorInfo


class IntegrationChanged(Event):
    """An integration's settings changed or it was deleted: caches of it must go."""

    type: ClassVar[str] = "integration.changed"
    integration_id: str
    change: Literal["updated", "deleted"]


class EnvironmentChanged(Event):
    """An environment's settings (webhook URLs and toggles, callback URL) changed: caches
    of them must go."""

    type: ClassVar[str] = "environment.changed"


class OperationStarted(Event):
    """An attempt began; the logs service shows it as running."""

    type: ClassVar[str] = "operation.started"
    operation_id: str
    kind: Literal["auth", "refresh", "webhook"] = "auth"
    operation: str
    integration_id: str | None = None
    connection_id: str | None = None
    provider: str | None = None
    auth_mode: AuthMode | None = None
    end_user: EndUser | None = None
    started_at: datetime = Field(default_factory=utc_now)
    messages: list[LogMessage] = Field(default_factory=list)


class OperationFinished(Event):
    """An attempt ended; carries the outcome and the messages logged along the way."""

    type: ClassVar[str] = "operation.finished"
    operation_id: str
    kind: Literal["auth", "refresh", "webhook"] = "auth"
    operation: str
    status: Literal["success", "failed"]
    integration_id: str | None = None
    connection_id: str | None = None
    provider: str | None = None
    auth_mode: AuthMode | None = None
    end_user: EndUser | None = None
    started_at: datetime | None = None
    ended_at: datetime = Field(default_factory=utc_now)
    error: ErrorInfo | None = None
    messages: list[LogMessage] = Field(default_factory=list)


class WebhookDelivered(Event):
    """A webhook reached the app's backend with a 2xx answer."""

    type: ClassVar[str] = "webhook.delivered"
    webhook_id: str
    url: str
    attempt: int
    status_code: int
    source_event_id: UUID
    integration_id: str | None = None
    connection_id: str | None = None


class WebhookAbandoned(Event):
    """A webhook could not be delivered after every retry."""

    type: ClassVar[str] = "webhook.abandoned"
    webhook_id: str
    url: str
    attempts: int
    last_error: str
    source_event_id: UUID
    integration_id: str | None = None
    connection_id: str | None = None


# ---------------------------------------------------------------- request/reply


class Reply(Message):
    """Base of every answer to a command."""


# An alias, because inside a command's body `type` names its routing-key string.
ReplyModel = type[Reply]


class Command(Message):
    """A request that expects one reply; named imperatively."""

    type: ClassVar[str] = ""
    reply_model: ClassVar[ReplyModel] = Reply

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.type:
            if cls.type in COMMAND_TYPES:
                raise TypeError(f"command type {cls.type} defined twice")
            COMMAND_TYPES[cls.type] = cls


COMMAND_TYPES: dict[str, type[Command]] = {}


class EnvironmentIdentity(Reply):
    """Which environment a key belongs to."""

    environment_id: int
    environment_name: str
    connect_sessions_required: bool = False


class AuthenticateSecretKey(Command):
    """Find the environment of a secret key, given its SHA-256 digest (never the key)."""

    type: ClassVar[str] = "vault.authenticate_secret_key"
    reply_model: ClassVar[ReplyModel] = EnvironmentIdentity
    key_digest: str = Field(pattern=r"^[0-9a-f]{64}$")


class ResolvePublicKey(Command):
    """Find the environment of a public key (public keys are not secret)."""

    type: ClassVar[str] = "vault.resolve_public_key"
    reply_model: ClassVar[ReplyModel] = EnvironmentIdentity
    public_key: str = Field(min_length=1, max_length=200)


class IntegrationInfo(Reply):
    """What the gateway needs to run a flow for an integration."""

    integration_id: str
    provider: str
    auth_mode: AuthMode
    environment_name: str
    display_name: str | None = None
    scopes: list[str] = Field(default_factory=list)
    callback_url: str | None = None
    # Client id/secret and per-integration provider settings, sealed for the gateway.
    sealed_config: str | None = None


class GetIntegration(Command):
    """Look up an integration's non-secret facts and its sealed OAuth config."""

    type: ClassVar[str] = "vault.get_integration"
    reply_model: ClassVar[ReplyModel] = IntegrationInfo
    environment_id: int
    integration_id: str


class ConnectionStored(Reply):
    """The vault's answer once credentials are committed."""

    connection_id: str
    integration_id: str
    provider: str
    auth_mode: AuthMode
    environment_name: str
    operation: ConnectionOperation


class StoreConnection(Command):
    """Create or override a connection with sealed credentials."""

    type: ClassVar[str] = "vault.store_connection"
    reply_model: ClassVar[ReplyModel] = ConnectionStored
    environment_id: int
    integration_id: str
    connection_id: str
    auth_mode: AuthMode
    sealed_credentials: str
    connection_config: dict[str, Any] = Field(default_factory=dict)
    end_user: EndUser | None = None
    operation_id: str | None = None
    expires_at: datetime | None = None


class WebhookTargets(Reply):
    """Where and whether an environment wants webhooks."""

    environment_name: str
    urls: list[str]
    send_new_connection_webhooks: bool
    send_auth_failure_webhooks: bool


class GetWebhookTargets(Command):
    """Read an environment's webhook URLs and toggles."""

    type: ClassVar[str] = "vault.get_webhook_targets"
    reply_model: ClassVar[ReplyModel] = WebhookTargets
    environment_id: int


class WebhookSignature(Reply):
    """A Standard Webhooks `webhook-signature` header value."""

    signature: str


class SignWebhook(Command):
    """Sign a webhook payload with the environment's secret, which never leaves the vault."""

    type: ClassVar[str] = "vault.sign_webhook"
    reply_model: ClassVar[ReplyModel] = WebhookSignature
    environment_id: int
    webhook_id: str
    timestamp: int
    payload: str


class ReplyEnvelope(BaseModel):
    """What travels back on the reply queue: a reply or an error."""

    ok: bool
    reply: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    http_status: int | None = None


# ---------------------------------------------------------------- credential lifecycle


class RefreshFailed(ConnectionEvent):
    """Refreshing a connection's credentials failed; the app may need to re-authorize."""

    type: ClassVar[str] = "connection.refresh_failed"
    attempts: int = 1
    error: ErrorInfo
    # The version of the credentials the refresher gave up on: newer ones are not affected.
    failed_version: int | None = None


class SealedConnection(Reply):
    """A connection's credentials and its integration's client config, sealed for transit."""

    connection_id: str
    integration_id: str
    provider: str
    auth_mode: AuthMode
    environment_name: str
    connection_config: dict[str, Any] = Field(default_factory=dict)
    end_user: EndUser | None = None
    expires_at: datetime | None = None
    version: int = 1  # bumps on every credential write; guards against lost updates
    sealed_credentials: str  # aad: connection_aad(...)
    sealed_config: str | None = None  # aad: f"integration:{env}:{integration_id}"


class GetConnectionCredentials(Command):
    """Read a connection's sealed credentials (the refresher's view of the vault)."""

    type: ClassVar[str] = "vault.get_connection_credentials"
    reply_model: ClassVar[ReplyModel] = SealedConnection
    environment_id: int
    integration_id: str
    connection_id: str


class CredentialsRefreshed(Reply):
    """The vault's answer after storing refreshed credentials."""

    stored: bool  # False when the connection changed meanwhile (version mismatch) or is gone
    version: int | None = None


class StoreRefreshedCredentials(Command):
    """Replace a connection's credentials after a refresh, if nobody changed them meanwhile."""

    type: ClassVar[str] = "vault.store_refreshed_credentials"
    reply_model: ClassVar[ReplyModel] = CredentialsRefreshed
    environment_id: int
    integration_id: str
    connection_id: str
    expected_version: int
    sealed_credentials: str
    expires_at: datetime | None = None
    operation_id: str | None = None


class RevocationResult(Reply):
    """Whether the provider confirmed the revocation."""

    revoked: bool
    detail: str | None = None


class RevokeCredentials(Command):
    """Revoke a connection's tokens at the provider (served by the refresher)."""

    type: ClassVar[str] = "refresher.revoke_credentials"
    reply_model: ClassVar[ReplyModel] = RevocationResult
    environment_id: int
    integration_id: str
    connection_id: str
    provider: str
    connection_config: dict[str, Any] = Field(default_factory=dict)
    sealed_credentials: str
    sealed_config: str | None = None


class IntegrationList(Reply):
    """Integrations of an environment, without secrets."""

    integrations: list[IntegrationInfo]


class ListIntegrations(Command):
    """List an environment's integrations, optionally only the named ones."""

    type: ClassVar[str] = "vault.list_integrations"
    reply_model: ClassVar[ReplyModel] = IntegrationList
    environment_id: int
    integration_ids: list[str] | None = None
