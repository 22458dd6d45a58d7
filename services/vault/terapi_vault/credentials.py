"""Connection credentials crossing the bus: stored by the gateway, renewed by the refresher."""

from __future__ import annotations

from typing import Any

from terapi_common.crypto import DecryptionError, connection_aad
from terapi_common.errors import InvalidInputError, NotFoundError
from terapi_common.events import (
    ConnectionStored,
    CredentialsRefreshed,
    Event,
    GetConnectionCredentials,
    SealedConnection,
    StoreConnection,
    StoreRefreshedCredentials,
)
from terapi_vault import domain, errors
from terapi_vault.handlers import (
    Vault,
    connection_target,
    decrypt_or_unreadable,
    forget_integration,
    require_environment,
    require_integration,
    sealed_client_config,
)
from terapi_vault.store import CredentialsChange, NewConnection, Row, StoredEvents


def _unseal(vault: Vault, sealed: str, aad: str) -> Any:
    try:
        return vault.key_ring.unseal(sealed, aad=aad)
    except (DecryptionError, ValueError):
        raise InvalidInputError(
            "sealed_credentials were not sealed for this connection",
            code="invalid_sealed_credentials",
        ) from None


async def store_connection(command: StoreConnection, *, vault: Vault) -> ConnectionStored:
    """Create or override a connection; its event commits in the same transaction."""
    target = await connection_target(vault, command.environment_id, command.integration_id)
    if target.auth_mode != command.auth_mode:
        raise InvalidInputError(
            f"auth_mode: integration {target.integration_id!r} uses "
            f"{target.auth_mode}, not {command.auth_mode}", code="invalid_auth_mode",
        )
    domain.check_connection_id(command.connection_id)
    aad = connection_aad(target.environment_id, command.integration_id, command.connection_id)
    sealed = _unseal(vault, command.sealed_credentials, aad)
    credentials = domain.check_connection_credentials(command.auth_mode, sealed)

    end_user = command.end_user.model_dump(mode="json") if command.end_user else None
    created, updated = domain.stored_events(
        environment_name=target.environment_name, end_user=end_user,
        environment_id=target.environment_id, connection_id=command.connection_id,
        integration_id=command.integration_id, provider=target.provider,
        auth_mode=command.auth_mode, operation_id=command.operation_id,
        expires_at=command.expires_at,
    )
    inserted = await vault.store.upsert_connection(
        NewConnection(
            environment_id=target.environment_id, integration_id=command.integration_id,
            connection_id=command.connection_id, provider=target.provider,
            auth_mode=command.auth_mode,
            credentials_encrypted=vault.key_ring.encrypt_json(credentials, aad=aad),
            connection_config=command.connection_config,
            end_user=end_user, expires_at=command.expires_at, now=vault.clock.now(),
        ),
        events=StoredEvents(created, updated),
    )
    if inserted is None:  # the integration was deleted meanwhile
        forget_integration(vault, command.environment_id, command.integration_id)
        raise errors.integration_not_found(command.integration_id)
    vault.kick()
    return ConnectionStored(
        connection_id=command.connection_id, integration_id=command.integration_id,
        provider=target.provider, auth_mode=command.auth_mode,
        environment_name=target.environment_name, operation="creation" if inserted else "override",
    )


async def get_connection_credentials(
    command: GetConnectionCredentials, *, vault: Vault
) -> SealedConnection:
    """A connection's credentials and its integration's client, sealed for the refresher."""
    environment = await require_environment(vault.store, command.environment_id)
    row = await vault.store.get_connection(
        environment.id, command.integration_id, command.connection_id
    )
    if row is None:
        raise NotFoundError(
            f"no connection {command.connection_id!r}", code="connection_not_found"
        )
    integration = await require_integration(vault, environment.id, command.integration_id)
    aad = connection_aad(environment.id, command.integration_id, command.connection_id)
    credentials = decrypt_or_unreadable(vault, row["credentials_encrypted"], aad=aad,
                                        what="credentials", connection_id=command.connection_id)
    sealed_config = sealed_client_config(vault, integration)
    return SealedConnection(
        connection_id=row["connection_id"], integration_id=row["integration_id"],
        provider=row["provider"], auth_mode=row["auth_mode"],
        environment_name=environment.name, connection_config=row["connection_config"],
        end_user=row["end_user"], expires_at=row["expires_at"], version=row["version"],
        sealed_credentials=vault.key_ring.seal(credentials, aad=aad),
        sealed_config=sealed_config,
    )


async def store_refreshed_credentials(
    command: StoreRefreshedCredentials, *, vault: Vault
) -> CredentialsRefreshed:
    """Replace credentials after a refresh, unless they changed since they were read."""
    environment = await require_environment(vault.store, command.environment_id)
    row = await vault.store.get_connection(
        environment.id, command.integration_id, command.connection_id
    )
    if row is None or row["version"] != command.expected_version:
        return CredentialsRefreshed(stored=False)
    aad = connection_aad(environment.id, command.integration_id, command.connection_id)
    credentials = domain.check_connection_credentials(
        row["auth_mode"], _unseal(vault, command.sealed_credentials, aad)
    )

    def event(updated: Row) -> Event:
        return domain.refreshed_event(
            updated, environment_id=environment.id, environment_name=environment.name,
            operation_id=command.operation_id, expires_at=command.expires_at,
        )

    version = await vault.store.replace_credentials(
        CredentialsChange(
            environment_id=environment.id, integration_id=command.integration_id,
            connection_id=command.connection_id, expected_version=command.expected_version,
            credentials_encrypted=vault.key_ring.encrypt_json(credentials, aad=aad),
            expires_at=command.expires_at, now=vault.clock.now(),
        ),
        event=event,
    )
    if version is None:
        return CredentialsRefreshed(stored=False)
    vault.kick()
    return CredentialsRefreshed(stored=True, version=version)
