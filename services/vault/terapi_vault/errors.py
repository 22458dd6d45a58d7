"""The vault's failures, by stable code."""

from __future__ import annotations

from terapi_common.errors import ConflictError, ForbiddenError, NotFoundError


def integration_not_found(integration_id: str) -> NotFoundError:
    return NotFoundError(f"no integration {integration_id!r}", code="integration_not_found")


def environment_not_found(environment: int | str) -> NotFoundError:
    return NotFoundError(f"no environment {environment!r}", code="environment_not_found")


def provider_not_found(name: str) -> NotFoundError:
    return NotFoundError(f"no provider {name!r} in the catalog", code="provider_not_found")


def integration_exists(integration_id: str) -> ConflictError:
    return ConflictError(
        f"integration {integration_id!r} exists already", code="integration_already_exists"
    )


def connection_of_another_end_user(connection_id: str) -> ForbiddenError:
    return ForbiddenError(
        f"connection {connection_id!r} belongs to another end user; a connect session may "
        "only create or override its own end user's connections",
        code="connection_of_another_end_user",
    )


def credentials_unreadable(what: str) -> ConflictError:
    """Stored ciphertext that will not decrypt: moved to another row, altered, or made with a
    key no longer in the key ring. Retrying cannot help, hence a 4xx and not a 5xx."""
    return ConflictError(
        f"the stored {what} cannot be decrypted; set them again (re-authorize the connection)",
        code="credentials_unreadable",
    )


def keys_unreadable(environment: str) -> ConflictError:
    return ConflictError(
        f"the keys of environment {environment!r} cannot be decrypted with this key ring; "
        "is TERAPI_ENCRYPTION_KEY the one they were made with?",
        code="credentials_unreadable",
    )
