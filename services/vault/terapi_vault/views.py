"""JSON shapes the vault's API answers with (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from terapi_vault.domain import Environment, Integration


def default_callback_url(public_base: str) -> str:
    return f"{public_base}/oauth/callback"


def mask_secret(secret: str | None) -> str | None:
    """`****abcd`: enough to recognise a secret, never enough to use it."""
    if secret is None:
        return None
    return "****" + (secret[-4:] if len(secret) >= 12 else "")


def integration_view(
    integration: Integration, *, client_secret: str | None, display_name: str, callback_url: str
) -> dict[str, Any]:
    """The integration as the API shows it."""
    credentials = None
    if integration.client_id is not None:
        credentials = {
            "type": integration.auth_mode,
            "client_id": integration.client_id,
            "client_secret": mask_secret(client_secret),
        }
    return {
        "integration_id": integration.integration_id,
        "provider": integration.provider,
        "auth_mode": integration.auth_mode,
        "display_name": display_name,
        "scopes": integration.scopes,
        "credentials": credentials,
        "provider_config": integration.provider_config,
        "callback_url": callback_url,
        "created_at": integration.created_at,
        "updated_at": integration.updated_at,
    }


def connection_detail(
    row: Mapping[str, Any], credentials: dict[str, Any], *, connection_id: str, environment: str
) -> dict[str, Any]:
    """A connection with its credentials, as the backend reads it."""
    return {
        "connection_id": connection_id,
        "integration_id": row["integration_id"],
        "provider": row["provider"],
        "environment": environment,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "connection_config": row["connection_config"],
        "end_user": row["end_user"],
        "errors": connection_errors(row),
        "credentials": credentials,
    }


def connection_summary(row: Mapping[str, Any], *, environment: str) -> dict[str, Any]:
    return {
        "connection_id": row["connection_id"],
        "integration_id": row["integration_id"],
        "provider": row["provider"],
        "auth_mode": row["auth_mode"],
        "environment": environment,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "end_user": row["end_user"],
        "errors": connection_errors(row),
    }


def connection_errors(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What needs the app's attention on a connection: a refresh the refresher gave up on
    (the end user must authorize again). Empty when the credentials are usable."""
    refresh = row["refresh_error"]
    return [{"type": "refresh", **refresh}] if refresh else []


def environment_view(environment: Environment, *, public_base: str) -> dict[str, Any]:
    """Environment settings as the API shows them (never a key or secret)."""
    return {
        "name": environment.name,
        "public_key": environment.public_key,
        "callback_url": environment.callback_url,
        "webhook_url": environment.webhook_url,
        "webhook_secondary_url": environment.webhook_secondary_url,
        "send_new_connection_webhooks": environment.send_new_connection_webhooks,
        "send_auth_failure_webhooks": environment.send_auth_failure_webhooks,
        "require_connect_sessions": environment.require_connect_sessions,
        "default_callback_url": default_callback_url(public_base),
    }


def callback_url(environment: Environment, *, public_base: str) -> str:
    return environment.callback_url or default_callback_url(public_base)
