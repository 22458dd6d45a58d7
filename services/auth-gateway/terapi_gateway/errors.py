"""The auth gateway's failures, each with a stable code clients can switch on."""

from __future__ import annotations

from terapi_common.errors import ForbiddenError, InvalidInputError, UnauthorizedError


class MissingAuthTokenError(UnauthorizedError):
    """Neither a connect session token nor a public key came with the request."""

    code = "missing_auth_token"


class InvalidConnectSessionTokenError(UnauthorizedError):
    """The connect session token is not one Terapi issued."""

    code = "invalid_connect_session_token"


class ConnectSessionExpiredError(UnauthorizedError):
    """The connect session existed but its lifetime is over."""

    code = "connect_session_expired"


class InvalidPublicKeyError(UnauthorizedError):
    """The public key belongs to no environment."""

    code = "invalid_public_key"


class ConnectSessionRequiredError(ForbiddenError):
    """The environment only accepts flows opened with a connect session."""

    code = "connect_session_required"


class IntegrationNotAllowedError(ForbiddenError):
    """The connect session does not open this integration."""

    code = "integration_not_allowed"


class InvalidConnectionIdError(InvalidInputError):
    """The connection id is empty, too long or has characters outside the allowed set."""

    code = "invalid_connection_id"


class MissingCredentialsError(InvalidInputError):
    """A credential field the auth mode needs is absent or empty; the message names it."""

    code = "missing_credentials"
