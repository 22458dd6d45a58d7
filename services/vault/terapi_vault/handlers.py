"""The vault's use cases: environments, integrations and connections (HTTP and the bus)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import structlog

from terapi_common.background import Background
from terapi_common.cache import TtlCache
from terapi_common.clock import Clock
from terapi_common.crypto import (
    DecryptionError,
    KeyRing,
    connection_aad,
    integration_aad,
    random_token,
    sha256_hex,
)
from terapi_common.errors import ConflictError, TerapiError
from terapi_common.events import (
    EnvironmentChanged,
    Event,
    IntegrationChanged,
    Reply,
    RevokeCredentials,
)
from terapi_common.providers import Catalog
from terapi_vault import domain, errors, views
from terapi_vault.auth import EnvironmentKeys
from terapi_vault.domain import Environment, Integration, IntegrationSettings
from terapi_vault.inputs import (
    ConnectionQuery,
    EnvironmentPatch,
    IntegrationCreate,
    IntegrationPatch,
)
from terapi_vault.signing import new_webhook_secret
from terapi_vault.store import NewEnvironment, Row, Store

log = structlog.get_logger("terapi.vault")
# A PATCH that finds the integration changed under it starts over from the new settings.
PATCH_ATTEMPTS = 5


@dataclass(frozen=True)
class Vault:
    """What the vault's handlers depend on."""

    store: Store
    key_ring: KeyRing
    catalog: Catalog
    keys: EnvironmentKeys
    clock: Clock
    public_base: str
    kick: Callable[[], None]  # wakes the outbox relay after a commit
    # Asks the refresher to revoke a deleted connection's tokens at the provider.
    revoke: Callable[[RevokeCredentials], Awaitable[Reply]]
    background: Background = field(default_factory=Background)
    # (environment, integration) -> what storing a connection needs to know of them;
    # the names and provider never change while the integration lives.
    targets: TtlCache[ConnectionTarget] = field(
        default_factory=lambda: TtlCache(ttl=TARGET_CACHE_SECONDS))


TARGET_CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class ConnectionTarget:
    """The environment and integration a connection is stored under."""

    environment_id: int
    environment_name: str
    integration_id: str
    provider: str
    auth_mode: str


async def connection_target(vault: Vault, environment_id: int, integration_id: str
                            ) -> ConnectionTarget:
    """Where a connection goes, cached: it is looked up on every authorization."""
    key = (environment_id, integration_id)
    cached = vault.targets.get(key)
    if cached is not None:
        return cached
    environment, integration = await asyncio.gather(
        require_environment(vault.store, environment_id),
        require_integration(vault, environment_id, integration_id),
    )
    target = ConnectionTarget(environment.id, environment.name, integration_id,
                              integration.provider, integration.auth_mode)
    vault.targets.put(key, target)
    return target


def forget_integration(vault: Vault, environment_id: int, integration_id: str) -> None:
    vault.targets.forget((environment_id, integration_id))


# ---------------------------------------------------------------- environments


async def create_environment(store: Store, key_ring: KeyRing, name: str) -> bool:
    """Create `name` with fresh keys unless it exists; safe when replicas race."""
    if await store.environment_by_name(name) is not None:
        return False
    environment_id = await store.next_environment_id()
    secret_key = random_token("sk_")
    return await store.insert_environment(NewEnvironment(
        id=environment_id,
        name=name,
        public_key=random_token("pk_"),
        secret_key_digest=sha256_hex(secret_key),
        secret_key_encrypted=key_ring.encrypt_json(
            secret_key, aad=domain.secret_key_aad(environment_id)
        ),
        webhook_secret_encrypted=key_ring.encrypt_json(
            new_webhook_secret(), aad=domain.webhook_secret_aad(environment_id)
        ),
    ))


async def create_default_environments(store: Store, key_ring: KeyRing) -> None:
    for name in domain.DEFAULT_ENVIRONMENTS:
        await create_environment(store, key_ring, name)


async def require_environment(store: Store, environment_id: int) -> Environment:
    environment = await store.environment_by_id(environment_id)
    if environment is None:
        raise errors.environment_not_found(environment_id)
    return environment


async def show_environment(vault: Vault, env: Environment) -> dict[str, Any]:
    current = await require_environment(vault.store, env.id)
    return views.environment_view(current, public_base=vault.public_base)


async def update_environment(
    vault: Vault, env: Environment, patch: EnvironmentPatch
) -> dict[str, Any]:
    updated = await vault.store.update_environment(
        env.id, patch.changes(), now=vault.clock.now(),
        event=EnvironmentChanged(environment_id=env.id),
    )
    if updated is None:
        raise errors.environment_not_found(env.id)
    vault.keys.forget()
    vault.kick()
    return views.environment_view(updated, public_base=vault.public_base)


# ---------------------------------------------------------------- integrations


async def require_integration(
    vault: Vault, environment_id: int, integration_id: str
) -> Integration:
    integration = await vault.store.get_integration(environment_id, integration_id)
    if integration is None:
        raise errors.integration_not_found(integration_id)
    return integration


def decrypt_or_unreadable(vault: Vault, blob: bytes, *, aad: str, what: str,
                          **ids: Any) -> Any:
    """A stored value decrypted; one that will not decrypt is logged by its ids (never its
    ciphertext) and answered as `credentials_unreadable`."""
    try:
        return vault.key_ring.decrypt_json(blob, aad=aad)
    except DecryptionError:
        log.warning("vault.ciphertext_unreadable", what=what, **ids)
        raise errors.credentials_unreadable(what) from None


def sealed_client_config(vault: Vault, integration: Integration) -> str | None:
    """The integration's OAuth client, sealed for the gateway or refresher; None without one."""
    settings = integration_settings(vault, integration)
    if settings.client_id is None:
        return None
    return vault.key_ring.seal(
        domain.client_config(settings),
        aad=integration_aad(integration.environment_id, integration.integration_id),
    )


def integration_settings(vault: Vault, integration: Integration) -> IntegrationSettings:
    """The integration's settings with its client secret decrypted."""
    secret = None
    if integration.client_secret_encrypted is not None:
        secret = decrypt_or_unreadable(
            vault, integration.client_secret_encrypted, what="client credentials",
            aad=integration_aad(integration.environment_id, integration.integration_id),
            integration_id=integration.integration_id)
    return IntegrationSettings(
        client_id=integration.client_id,
        client_secret=secret,
        scopes=integration.scopes,
        provider_config=integration.provider_config,
    )


def _with_settings(
    vault: Vault, integration: Integration, settings: IntegrationSettings
) -> Integration:
    secret = settings.client_secret
    aad = integration_aad(integration.environment_id, integration.integration_id)
    return replace(
        integration,
        client_id=settings.client_id,
        client_secret_encrypted=(
            vault.key_ring.encrypt_json(secret, aad=aad) if secret is not None else None
        ),
        scopes=settings.scopes,
        provider_config=settings.provider_config,
    )


def _integration_view(
    vault: Vault, env: Environment, integration: Integration, client_secret: str | None
) -> dict[str, Any]:
    provider = vault.catalog.get(integration.provider)
    return views.integration_view(
        integration,
        client_secret=client_secret,
        display_name=provider.display_name if provider else integration.provider,
        callback_url=views.callback_url(env, public_base=vault.public_base),
    )


async def create_integration(
    vault: Vault, env: Environment, body: IntegrationCreate
) -> dict[str, Any]:
    provider = vault.catalog.require(body.provider)
    settings = domain.plan_integration(body, provider)
    now = vault.clock.now()
    blank = Integration(
        environment_id=env.id, integration_id=body.integration_id, provider=provider.name,
        auth_mode=provider.auth_mode, client_id=None, client_secret_encrypted=None, scopes=[],
        provider_config={}, created_at=now, updated_at=now,
    )
    integration = _with_settings(vault, blank, settings)
    if not await vault.store.insert_integration(integration):
        raise errors.integration_exists(body.integration_id)
    return _integration_view(vault, env, integration, settings.client_secret)


async def list_integrations(vault: Vault, env: Environment) -> dict[str, Any]:
    integrations = await vault.store.list_integrations(env.id)
    return {"data": [
        _integration_view(vault, env, i, _readable_secret(vault, i)) for i in integrations
    ]}


def _readable_secret(vault: Vault, integration: Integration) -> str | None:
    """The client secret, or None when it cannot be decrypted (one bad row spoils no list)."""
    try:
        return integration_settings(vault, integration).client_secret
    except TerapiError:
        return None


def _settings_to_patch(
    vault: Vault, integration: Integration, patch: IntegrationPatch
) -> IntegrationSettings:
    """Current settings; an unreadable secret is no obstacle to a PATCH that replaces it."""
    try:
        return integration_settings(vault, integration)
    except TerapiError:
        if patch.credentials is None or patch.credentials.client_secret is None:
            raise
    return integration_settings(vault, replace(integration, client_secret_encrypted=None))


async def show_integration(vault: Vault, env: Environment, integration_id: str) -> dict[str, Any]:
    integration = await require_integration(vault, env.id, integration_id)
    secret = integration_settings(vault, integration).client_secret
    return _integration_view(vault, env, integration, secret)


async def update_integration(
    vault: Vault, env: Environment, integration_id: str, patch: IntegrationPatch
) -> dict[str, Any]:
    """Merge `patch` into the stored settings; two PATCHes at once both land, in turn."""
    for _ in range(PATCH_ATTEMPTS):
        integration = await require_integration(vault, env.id, integration_id)
        provider = vault.catalog.require(integration.provider)
        settings = domain.patch_integration(_settings_to_patch(vault, integration, patch),
                                            patch, provider)
        updated = replace(_with_settings(vault, integration, settings),
                          updated_at=max(vault.clock.now(),
                                         integration.updated_at + timedelta(microseconds=1)))
        changed = IntegrationChanged(environment_id=env.id, integration_id=integration_id,
                                     change="updated")
        if await vault.store.update_integration(updated, event=changed,
                                                read_at=integration.updated_at):
            forget_integration(vault, env.id, integration_id)
            vault.kick()
            return _integration_view(vault, env, updated, settings.client_secret)
    raise ConflictError(f"integration {integration_id!r} keeps changing; try again",
                        code="integration_changed")


async def delete_integration(vault: Vault, env: Environment, integration_id: str) -> None:
    """Delete an integration and its connections, announcing each connection's deletion."""

    def events(rows: Sequence[Row]) -> list[Event]:
        return [
            domain.deleted_event(r, environment_id=env.id, environment_name=env.name)
            for r in rows
        ] + [IntegrationChanged(environment_id=env.id, integration_id=integration_id,
                                change="deleted")]

    if not await vault.store.delete_integration(env.id, integration_id, events=events):
        raise errors.integration_not_found(integration_id)
    forget_integration(vault, env.id, integration_id)
    vault.kick()


# ---------------------------------------------------------------- providers


def list_providers(vault: Vault) -> dict[str, Any]:
    return {"data": [p.to_public_dict() for p in vault.catalog.all()]}


def show_provider(vault: Vault, name: str) -> dict[str, Any]:
    provider = vault.catalog.get(name)
    if provider is None:
        raise errors.provider_not_found(name)
    return provider.to_public_dict()


# ---------------------------------------------------------------- connections


async def read_connection(
    vault: Vault, env: Environment, connection_id: str,
    *, integration_id: str | None, include_refresh_token: bool,
) -> dict[str, Any]:
    """The hot path: one indexed SELECT, one AES-GCM decrypt."""
    rows = await vault.store.read_connection(env.id, connection_id, integration_id)
    row = domain.pick_connection(rows, connection_id, integration_id)
    credentials = decrypt_or_unreadable(
        vault, row["credentials_encrypted"], what="credentials",
        aad=connection_aad(env.id, row["integration_id"], connection_id),
        environment_id=env.id, integration_id=row["integration_id"], connection_id=connection_id)
    credentials = domain.public_credentials(
        credentials, include_refresh_token=include_refresh_token
    )
    return views.connection_detail(
        row, credentials, connection_id=connection_id, environment=env.name
    )


async def list_connections(
    vault: Vault, env: Environment, query: ConnectionQuery
) -> dict[str, Any]:
    rows = await vault.store.list_connections(env.id, query)
    page = rows[: query.limit]
    more = len(rows) > query.limit
    return {
        "data": [views.connection_summary(r, environment=env.name) for r in page],
        "next_cursor": domain.encode_cursor(page[-1]) if more else None,
    }


async def delete_connection(
    vault: Vault, env: Environment, connection_id: str, *, integration_id: str | None
) -> None:
    """Delete a connection, then revoke its tokens where the provider allows it."""
    def event(row: Row) -> Event:
        return domain.deleted_event(row, environment_id=env.id, environment_name=env.name)

    deleted = await vault.store.delete_connection(env.id, connection_id, integration_id,
                                                  event=event)
    vault.kick()
    revocation = _revocation(vault, env, deleted)
    if revocation is not None:  # the caller need not wait for the provider
        vault.background.spawn(_revoke(vault, revocation))


# Only these hold tokens a provider can revoke (RFC 7009); keys and passwords cannot be.
_REVOCABLE_MODES = frozenset({"OAUTH2", "OAUTH2_CC"})
REVOKE_TIMEOUT_SECONDS = 5.0


def _revocation(vault: Vault, env: Environment, row: Row) -> RevokeCredentials | None:
    """What the refresher needs to revoke this connection's tokens, or None."""
    provider = vault.catalog.get(row["provider"])
    if row["auth_mode"] not in _REVOCABLE_MODES or provider is None:
        return None
    integration_id = row["integration_id"]
    aad = connection_aad(env.id, integration_id, row["connection_id"])
    try:
        credentials = vault.key_ring.decrypt_json(row["credentials_encrypted"], aad=aad)
    except DecryptionError:
        return None  # nothing readable to revoke; the deletion still goes ahead
    return RevokeCredentials(
        environment_id=env.id, integration_id=integration_id,
        connection_id=row["connection_id"], provider=row["provider"],
        connection_config=row["connection_config"] or {},
        sealed_credentials=vault.key_ring.seal(credentials, aad=aad),
    )


async def _revoke(vault: Vault, revocation: RevokeCredentials) -> None:
    """Best effort: a provider that cannot be reached must not undo the deletion, and a
    failure here (it runs in the background) is logged, never left unobserved."""
    try:
        integration = await vault.store.get_integration(revocation.environment_id,
                                                        revocation.integration_id)
        if integration is not None:
            revocation = revocation.model_copy(
                update={"sealed_config": sealed_client_config(vault, integration)})
        result = await vault.revoke(revocation)
    except TerapiError as exc:
        log.warning("connection.revocation_failed", code=exc.code,
                    connection_id=revocation.connection_id)
        return
    except Exception:  # noqa: BLE001  # a database hiccup: the deletion stands regardless
        log.exception("connection.revocation_failed", connection_id=revocation.connection_id)
        return
    log.info("connection.revocation", revoked=getattr(result, "revoked", False),
             detail=getattr(result, "detail", None), connection_id=revocation.connection_id)
