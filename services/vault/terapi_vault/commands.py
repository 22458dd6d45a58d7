"""The vault's request/reply commands: key lookups, integrations and webhook signing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from terapi_common.errors import UnauthorizedError
from terapi_common.events import (
    AuthenticateSecretKey,
    Command,
    EnvironmentIdentity,
    GetConnectionCredentials,
    GetIntegration,
    GetWebhookTargets,
    IntegrationInfo,
    IntegrationList,
    ListIntegrations,
    Reply,
    ResolvePublicKey,
    SignWebhook,
    StoreConnection,
    StoreRefreshedCredentials,
    WebhookSignature,
    WebhookTargets,
)
from terapi_vault import credentials, domain, errors, views
from terapi_vault.domain import Environment, Integration
from terapi_vault.handlers import (
    Vault,
    decrypt_or_unreadable,
    require_environment,
    require_integration,
    sealed_client_config,
)
from terapi_vault.signing import sign_webhook as sign


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


def _integration_info(
    vault: Vault, environment: Environment, integration: Integration, *, sealed_config: str | None
) -> IntegrationInfo:
    provider = vault.catalog.get(integration.provider)
    return IntegrationInfo(
        integration_id=integration.integration_id,
        provider=integration.provider,
        auth_mode=integration.auth_mode,
        environment_name=environment.name,
        display_name=provider.display_name if provider else integration.provider,
        scopes=integration.scopes,
        callback_url=views.callback_url(environment, public_base=vault.public_base),
        sealed_config=sealed_config,
    )


async def get_integration(command: GetIntegration, *, vault: Vault) -> IntegrationInfo:
    """Non-secret facts, plus the OAuth client sealed so only the gateway can read it."""
    environment = await require_environment(vault.store, command.environment_id)
    integration = await require_integration(vault, environment.id, command.integration_id)
    return _integration_info(vault, environment, integration,
                             sealed_config=sealed_client_config(vault, integration))


async def list_integrations(command: ListIntegrations, *, vault: Vault) -> IntegrationList:
    """An environment's integrations (only the named ones when given), without secrets."""
    environment = await require_environment(vault.store, command.environment_id)
    wanted = set(command.integration_ids) if command.integration_ids is not None else None
    return IntegrationList(integrations=[
        _integration_info(vault, environment, integration, sealed_config=None)
        for integration in await vault.store.list_integrations(environment.id)
        if wanted is None or integration.integration_id in wanted
    ])


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
    secret = decrypt_or_unreadable(
        vault, secrets.webhook_secret_encrypted, what="webhook secret",
        aad=domain.webhook_secret_aad(command.environment_id),
        environment_id=command.environment_id)
    return WebhookSignature(signature=sign(
        secret, webhook_id=command.webhook_id, timestamp=command.timestamp,
        payload=command.payload,
    ))


CommandHandler = Callable[[Any], Awaitable[Reply]]
_HANDLERS: dict[type[Command], Callable[..., Awaitable[Reply]]] = {
    AuthenticateSecretKey: authenticate_secret_key,
    ResolvePublicKey: resolve_public_key,
    GetIntegration: get_integration,
    ListIntegrations: list_integrations,
    StoreConnection: credentials.store_connection,
    GetConnectionCredentials: credentials.get_connection_credentials,
    StoreRefreshedCredentials: credentials.store_refreshed_credentials,
    GetWebhookTargets: get_webhook_targets,
    SignWebhook: sign_webhook,
}


def command_handlers(vault: Vault) -> dict[type[Command], CommandHandler]:
    """Every command the vault serves, bound to its dependencies."""
    return {command: partial(handler, vault=vault) for command, handler in _HANDLERS.items()}
