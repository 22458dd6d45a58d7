"""The auth gateway's failures, each with a stable code clients can switch on."""

from __future__ import annotations

from terapi_common.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    ProviderError,
    UnauthorizedError,
)


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


class InvalidAuthModeError(InvalidInputError):
    """The integration does not use the auth mode of the flow that was called."""

    code = "invalid_auth_mode"


class InvalidStateError(InvalidInputError):
    """The callback's state (or OAuth 1 token) is unknown or was used already."""

    code = "invalid_state"


class StateExpiredError(InvalidInputError):
    """The callback came after the flow's ten minutes were over."""

    code = "state_expired"


class FlowNotStartedHereError(ForbiddenError):
    """The callback reached a browser without the cookie of the one that started the flow."""

    code = "flow_not_started_here"


class InvalidCredentialsError(InvalidInputError):
    """A credential value has a shape no provider accepts; the message names the field."""

    code = "invalid_credentials"


class AccessDeniedError(ForbiddenError):
    """The end user refused consent at the provider."""

    code = "access_denied"


class ProviderRefusedError(ProviderError):
    """The provider sent the end user back with an error other than a refusal."""

    code = "provider_error"


class TokenExchangeFailedError(ProviderError):
    """The provider's token endpoint answered with an error or could not be reached.

    OAuth 2 token answers are judged by `terapi_common.oauth2`, which raises this code too.
    """

    code = "token_exchange_failed"


class InvalidTokenResponseError(ProviderError):
    """The provider's token endpoint answered something that is not a usable token.

    OAuth 2 token answers are judged by `terapi_common.oauth2`, which raises this code too.
    """

    code = "invalid_token_response"


class ConnectionMetadataUnavailableError(ProviderError):
    """The provider's API did not tell the connection config the connection needs (the
    catalog's `capture_from_request`), so the authorization cannot be used."""

    code = "connection_metadata_unavailable"
    http_status = 502


class ConnectionTestFailedError(ProviderError):
    """The provider did not accept the credentials in the verification request."""

    code = "connection_test_failed"
    http_status = 400


class FlowNotFoundError(NotFoundError):
    """No OAuth flow was started with this flow id."""

    code = "flow_not_found"


class FlowIdInUseError(ConflictError):
    """Another flow already uses this flow id; a flow id names one attempt only."""

    code = "flow_id_in_use"
