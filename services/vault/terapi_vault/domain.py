"""The vault's records and rules: integration settings, credential shapes, events, views."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from terapi_common.errors import InvalidInputError, NotFoundError
from terapi_common.events import (
    AuthMode,
    ConnectionCreated,
    ConnectionDeleted,
    ConnectionUpdated,
    EndUser,
)
from terapi_vault.inputs import IntegrationCreate, IntegrationPatch, ProviderConfig

OAUTH_MODES = frozenset({"OAUTH2", "OAUTH1", "OAUTH2_CC"})
# The fields a connection's credentials must carry, by auth mode (RFC 6749 / RFC 5849 names).
REQUIRED_CREDENTIALS: dict[str, tuple[str, ...]] = {
    "API_KEY": ("api_key",),
    "BASIC": ("username",),
    "OAUTH2": ("access_token",),
    "OAUTH2_CC": ("access_token",),
    "OAUTH1": ("oauth_token", "oauth_token_secret"),
}
DEFAULT_ENVIRONMENTS = ("dev", "prod")
MAX_CONNECTION_ID = 255


class ProviderFacts(Protocol):
    """What the rules need to know about a catalog provider."""

    name: str
    display_name: str
    auth_mode: str
    authorization_url: str | None
    token_url: str | None

    @property
    def is_generic(self) -> bool: ...


@dataclass(frozen=True)
class Environment:
    """An environment's public settings (its keys stay in the store, encrypted)."""

    id: int
    name: str
    public_key: str
    callback_url: str | None
    webhook_url: str | None
    webhook_secondary_url: str | None
    send_new_connection_webhooks: bool
    send_auth_failure_webhooks: bool
    require_connect_sessions: bool


@dataclass(frozen=True)
class Integration:
    """An integration as stored: its client secret only as ciphertext."""

    environment_id: int
    integration_id: str
    provider: str
    auth_mode: str
    client_id: str | None
    client_secret_encrypted: bytes | None
    scopes: list[str]
    provider_config: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class IntegrationSettings:
    """What the app configured for an integration, secret in the clear (memory only)."""

    client_id: str | None = None
    client_secret: str | None = None
    scopes: list[str] = field(default_factory=list)
    provider_config: dict[str, Any] = field(default_factory=dict)


def secret_key_aad(environment_id: int) -> str:
    return f"environment:{environment_id}:secret_key"


def webhook_secret_aad(environment_id: int) -> str:
    return f"environment:{environment_id}:webhook_secret"


# ---------------------------------------------------------------- integrations


def plan_integration(body: IntegrationCreate, provider: ProviderFacts) -> IntegrationSettings:
    """The settings to store for a new integration, checked against its provider."""
    credentials = body.credentials
    config = _merged_config({}, body.provider_config, credentials)
    scopes = body.scopes or []
    if credentials is not None and credentials.scopes is not None:
        scopes = credentials.scopes
    settings = IntegrationSettings(
        client_id=credentials.client_id if credentials else None,
        client_secret=credentials.client_secret if credentials else None,
        scopes=list(scopes),
        provider_config=config,
    )
    check_settings(settings, provider, credentials_type=credentials.type if credentials else None)
    return settings


def patch_integration(
    current: IntegrationSettings, patch: IntegrationPatch, provider: ProviderFacts
) -> IntegrationSettings:
    """The settings after a PATCH: only the fields sent change."""
    credentials = patch.credentials
    changed = replace(
        current, provider_config=_merged_config(current.provider_config, patch.provider_config,
                                                credentials)
    )
    if patch.scopes is not None:
        changed = replace(changed, scopes=list(patch.scopes))
    if credentials is not None:
        changed = replace(
            changed,
            client_id=credentials.client_id or changed.client_id,
            client_secret=credentials.client_secret or changed.client_secret,
            scopes=list(credentials.scopes) if credentials.scopes is not None else changed.scopes,
        )
    has_credentials = credentials is not None and bool(
        credentials.model_fields_set & {"type", "client_id", "client_secret"}
    )
    check_settings(
        changed, provider, credentials_type=credentials.type if credentials else None,
        credentials_sent=has_credentials,
    )
    return changed


def _merged_config(
    current: Mapping[str, Any], *updates: ProviderConfig | Any | None
) -> dict[str, Any]:
    """Apply provider settings sent at the top level or inside `credentials`; null removes."""
    merged = dict(current)
    for update in updates:
        if update is None:
            continue
        sent = update.model_dump(mode="json", exclude_unset=True)
        for name in ProviderConfig.model_fields:
            if name not in sent:
                continue
            if sent[name] is None:
                merged.pop(name, None)
            else:
                merged[name] = sent[name]
    return merged


def check_settings(
    settings: IntegrationSettings,
    provider: ProviderFacts,
    *,
    credentials_type: str | None,
    credentials_sent: bool | None = None,
) -> None:
    """Refuse settings that do not fit the provider's auth mode."""
    mode = provider.auth_mode
    sent = credentials_sent if credentials_sent is not None else credentials_type is not None
    if mode not in OAUTH_MODES:
        if sent or settings.scopes:
            raise InvalidInputError(
                f"credentials: {provider.name} uses {mode}; it takes no client credentials "
                "or scopes", code="invalid_credentials",
            )
    elif not settings.client_id or not settings.client_secret:
        raise InvalidInputError(
            f"credentials: {provider.name} uses {mode}; send credentials with client_id "
            "and client_secret", code="credentials_required",
        )
    if credentials_type is not None and credentials_type != mode:
        raise InvalidInputError(
            f"credentials.type: {provider.name} uses {mode}, not {credentials_type}",
            code="invalid_credentials",
        )
    _check_provider_config(settings.provider_config, provider)


def _check_provider_config(config: Mapping[str, Any], provider: ProviderFacts) -> None:
    if config and provider.auth_mode != "OAUTH2":
        raise InvalidInputError(
            f"provider_config: {provider.name} uses {provider.auth_mode}; urls, pkce and "
            "scope_separator apply to OAUTH2 providers only", code="invalid_provider_config",
        )
    if needs_urls(provider) and not config.get("urls"):
        raise InvalidInputError(
            f"credentials.urls: {provider.name} has no URLs of its own; send "
            "authorization_url and token_url", code="invalid_provider_config",
        )


def needs_urls(provider: ProviderFacts) -> bool:
    """A generic OAuth 2 provider: the integration supplies the URLs."""
    has_urls = bool(provider.authorization_url and provider.token_url)
    return provider.auth_mode == "OAUTH2" and (provider.is_generic or not has_urls)


def client_config(settings: IntegrationSettings) -> dict[str, Any]:
    """What the gateway and the refresher unseal to talk to the provider as the app."""
    return {
        "client_id": settings.client_id,
        "client_secret": settings.client_secret,
        "provider_config": settings.provider_config,
    }


# ---------------------------------------------------------------- connections


def check_connection_credentials(auth_mode: AuthMode, value: Any) -> dict[str, Any]:
    """The credentials to store, once their shape fits the auth mode."""
    if not isinstance(value, dict):
        raise InvalidInputError("credentials must be an object", code="invalid_credentials")
    kind = value.get("type", auth_mode)
    if kind != auth_mode:
        raise InvalidInputError(
            f"credentials.type is {kind!r} but the connection uses {auth_mode}",
            code="invalid_credentials",
        )
    for name in REQUIRED_CREDENTIALS.get(auth_mode, ()):
        if not isinstance(value.get(name), str) or not value[name]:
            raise InvalidInputError(
                f"credentials.{name} is required for {auth_mode}", code="invalid_credentials"
            )
    return {**value, "type": auth_mode}


def public_credentials(credentials: dict[str, Any], *, include_refresh_token: bool) -> dict:
    """Credentials as the backend reads them; the refresh token only when asked for."""
    if include_refresh_token:
        return credentials
    credentials.pop("refresh_token", None)
    raw = credentials.get("raw")
    if isinstance(raw, dict) and "refresh_token" in raw:
        credentials["raw"] = {k: v for k, v in raw.items() if k != "refresh_token"}
    return credentials


def pick_connection(
    rows: Sequence[Mapping[str, Any]], connection_id: str, integration_id: str | None
) -> Mapping[str, Any]:
    """The one row a request names, or why it names none."""
    if not rows:
        raise NotFoundError(f"no connection {connection_id!r}", code="connection_not_found")
    if len(rows) > 1 and integration_id is None:
        raise InvalidInputError(
            f"connection {connection_id!r} exists under several integrations; "
            "pass integration_id", code="integration_id_required",
        )
    return rows[0]


def check_connection_id(connection_id: str) -> str:
    """Connection ids are 1 to 255 printable characters."""
    if not 1 <= len(connection_id) <= MAX_CONNECTION_ID or not connection_id.isprintable():
        raise InvalidInputError(
            f"connection_id must be 1 to {MAX_CONNECTION_ID} printable characters",
            code="invalid_connection_id",
        )
    return connection_id


def stored_events(
    *, environment_name: str, end_user: dict[str, Any] | None, **fields: Any
) -> tuple[ConnectionCreated, ConnectionUpdated]:
    """connection.created for a new row and connection.updated for an override, under one
    event id: the write that stores the connection keeps the one that happened."""
    created = ConnectionCreated(
        environment=environment_name,
        end_user=EndUser.model_validate(end_user) if end_user else None,
        **fields,
    )
    return created, ConnectionUpdated(**created.model_dump(exclude={"operation"}))


def _row_fields(
    row: Mapping[str, Any], *, environment_id: int, environment_name: str
) -> dict[str, Any]:
    """What every connection event says about the connection a row holds."""
    end_user = row["end_user"]
    return {
        "environment_id": environment_id,
        "environment": environment_name,
        "connection_id": row["connection_id"],
        "integration_id": row["integration_id"],
        "provider": row["provider"],
        "auth_mode": row["auth_mode"],
        "end_user": EndUser.model_validate(end_user) if end_user else None,
    }


def refreshed_event(
    row: Mapping[str, Any], *, environment_id: int, environment_name: str, **fields: Any
) -> ConnectionUpdated:
    """connection.updated for credentials renewed by the refresher."""
    return ConnectionUpdated(
        **_row_fields(row, environment_id=environment_id, environment_name=environment_name),
        operation="refresh", **fields,
    )


def deleted_event(
    row: Mapping[str, Any], *, environment_id: int, environment_name: str
) -> ConnectionDeleted:
    """connection.deleted for a removed row."""
    return ConnectionDeleted(
        **_row_fields(row, environment_id=environment_id, environment_name=environment_name)
    )


def like_pattern(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def encode_cursor(row: Mapping[str, Any]) -> str:
    """An opaque position after `row` in newest-first order."""
    position = [row["created_at"].isoformat(), row["integration_id"], row["connection_id"]]
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str, str]:
    bad = InvalidInputError("cursor is not one this API gave out", code="invalid_cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, integration_id, connection_id = json.loads(base64.urlsafe_b64decode(padded))
        when = datetime.fromisoformat(created)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(integration_id, str) or not isinstance(connection_id, str):
        raise bad
    if when.tzinfo is None:
        raise bad
    return when, integration_id, connection_id


# ---------------------------------------------------------------- environments


def webhook_urls(environment: Environment) -> list[str]:
    """Where webhooks go: primary then secondary, without blanks or repeats."""
    urls = [environment.webhook_url, environment.webhook_secondary_url]
    return list(dict.fromkeys(u for u in urls if u))
