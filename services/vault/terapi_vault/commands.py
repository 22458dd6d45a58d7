"""The vault's request/reply commands: key lookups, integrations, storing credentials, webhooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from terapi_common.crypto import DecryptionError, connection_aad
from terapi_common.errors import InvalidInputError, UnauthorizedError
from terapi_common.events import (
    AuthenticateSecretKey,
    Command,
    ConnectionStored,
    EnvironmentIdentity,
    Event,
    GetIntegration,
    GetWebhookTargets,
    IntegrationInfo,
    Reply,
    ResolvePublicKey,
    SignWebhook,
    StoreConnection,
    WebhookSignature,
    WebhookTargets,
)
from terapi_vault import domain, errors
from terapi_vault.domain import Environment
from terapi_vault.handlers import (
    Vault,
    integration_settings,
    require_environment,
    require_integration,
)
from terapi_vault.signing import sign_webhook as sign
from terapi_vault.store import NewConnection, Row


def _identity(environment: Environment) -> EnvironmentIdentity:
    return EnvironmentIdentity(
        environment_id=environment.id,
        environment_name=environment.name,
        connect_sessions_required=environment.require_connect_sessions,
    )


async def authenticate_secret_key(
    command: AuthenticateSecretKey, *, vault: Vault
) -> EnvironmentIdentity:
    return _identity(await vault.keys.by_digest(command.key_digest))


async def resolve_public_key(command: ResolvePublicKey, *, vault: Vault) -> EnvironmentIdentity:
    environment = await vault.store.environment_by_public_key(command.public_key)
    if environment is None:
        raise UnauthorizedError("the public key is not valid", code="invalid_public_key")
    return _identity(environment)


async def get_integration(command: GetIntegration, *, vault: Vault) -> IntegrationInfo:
    """Non-secret facts, plus the OAuth client sealed so only the gateway can read it."""
    environment = await require_environment(vault.store, command.environment_id)
    integration = await require_integration(vault, environment.id, command.integration_id)
    settings = integration_settings(vault, integration)
    sealed = None
    if settings.client_id is not None:
        sealed = vault.key_ring.seal(
            {
                "client_id": settings.client_id,
                "client_secret": settings.client_secret,
                "provider_config": settings.provider_config,
            },
            aad=domain.integration_aad(environment.id, integration.integration_id),
        )
    return IntegrationInfo(
        integration_id=integration.integration_id,
        provider=integration.provider,
        auth_mode=integration.auth_mode,
        environment_name=environment.name,
        scopes=integration.scopes,
        sealed_config=sealed,
    )


async def store_connection(command: StoreConnection, *, vault: Vault) -> ConnectionStored:
    """Create or override a connection; its event commits in the same transaction."""
    environment = await require_environment(vault.store, command.environment_id)
    integration = await require_integration(vault, environment.id, command.integration_id)
    if integration.auth_mode != command.auth_mode:
        raise InvalidInputError(
            f"auth_mode: integration {integration.integration_id!r} uses "
            f"{integration.auth_mode}, not {command.auth_mode}", code="invalid_auth_mode",
        )
    domain.check_connection_id(command.connection_id)
    aad = connection_aad(environment.id, command.integration_id, command.connection_id)
    sealed = _unseal(vault, command, aad)
    credentials = domain.check_connection_credentials(command.auth_mode, sealed)

    def event(row: Row) -> Event:
        return domain.stored_event(
            inserted=row["inserted"], environment_name=environment.name,
            end_user=row["end_user"], environment_id=environment.id,
            connection_id=command.connection_id, integration_id=command.integration_id,
            provider=integration.provider, auth_mode=command.auth_mode,
            operation_id=command.operation_id, expires_at=command.expires_at,
        )

    inserted = await vault.store.upsert_connection(
        NewConnection(
            environment_id=environment.id, integration_id=command.integration_id,
            connection_id=command.connection_id, provider=integration.provider,
            auth_mode=command.auth_mode,
            credentials_encrypted=vault.key_ring.encrypt_json(credentials, aad=aad),
            connection_config=command.connection_config,
            end_user=command.end_user.model_dump(mode="json") if command.end_user else None,
            expires_at=command.expires_at, now=vault.clock.now(),
        ),
        event=event,
    )
    if inserted is None:  # the integration was deleted meanwhile
        raise errors.integration_not_found(command.integration_id)
    vault.kick()
    return ConnectionStored(
        connection_id=command.connection_id, integration_id=command.integration_id,
        provider=integration.provider, auth_mode=command.auth_mode,
        environment_name=environment.name, operation="creation" if inserted else "override",
    )


def _unseal(vault: Vault, command: StoreConnection, aad: str) -> Any:
    try:
        return vault.key_ring.unseal(command.sealed_credentials, aad=aad)
    except (DecryptionError, ValueError):
        raise InvalidInputError(
            "sealed_credentials were not sealed for this connection",
            code="invalid_sealed_credentials",
        ) from None


async def get_webhook_targets(command: GetWebhookTargets, *, vault: Vault) -> WebhookTargets:
    environment = await require_environment(vault.store, command.environment_id)
    return WebhookTargets(
        environment_name=environment.name,
        urls=domain.webhook_urls(environment),
        send_new_connection_webhooks=environment.send_new_connection_webhooks,
        send_auth_failure_webhooks=environment.send_auth_failure_webhooks,
    )


async def sign_webhook(command: SignWebhook, *, vault: Vault) -> WebhookSignature:
    """Sign with the environment's webhook secret, which never leaves the vault."""
    secrets = await vault.store.environment_secrets(command.environment_id)
    if secrets is None:
        raise errors.environment_not_found(command.environment_id)
    try:
        secret = vault.key_ring.decrypt_json(
            secrets.webhook_secret_encrypted,
            aad=domain.webhook_secret_aad(command.environment_id),
        )
    except DecryptionError:
        raise errors.credentials_unreadable("webhook secret") from None
    return WebhookSignature(signature=sign(
        secret, webhook_id=command.webhook_id, timestamp=command.timestamp,
        payload=command.payload,
    ))


CommandHandler = Callable[[Any], Awaitable[Reply]]
_HANDLERS: dict[type[Command], Callable[..., Awaitable[Reply]]] = {
    AuthenticateSecretKey: authenticate_secret_key,
    ResolvePublicKey: resolve_public_key,
    GetIntegration: get_integration,
    StoreConnection: store_connection,
    GetWebhookTargets: get_webhook_targets,
    SignWebhook: sign_webhook,
}


def command_handlers(vault: Vault) -> dict[type[Command], CommandHandler]:
    """Every command the vault serves, bound to its dependencies."""
    return {command: partial(handler, vault=vault) for command, handler in _HANDLERS.items()}
