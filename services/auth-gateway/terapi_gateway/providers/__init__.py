"""Auth modes the gateway runs, one module per mode behind the `AuthMode` protocol."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from terapi_common.events import AuthMode as AuthModeName
from terapi_gateway.providers import api_key, basic, client_credentials


class AuthMode(Protocol):
    """One way of authorizing an integration: API key, Basic, OAuth 2, OAuth 1..."""

    @property
    def name(self) -> AuthModeName:
        """The mode as events and the vault name it (`API_KEY`)."""

    @property
    def slug(self) -> str:
        """Its path segment: the mode's flows live under `/auth/<slug>/{integration_id}`."""

    @property
    def title(self) -> str:
        """How an operation's log lines name it (`API key`)."""


class CredentialsMode(AuthMode, Protocol):
    """A mode completed in one request: the end user's fields, checked, then stored."""

    def credentials(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The payload to seal for the vault, read from the request body's fields."""


CREDENTIALS_MODES: tuple[CredentialsMode, ...] = (
    api_key.ApiKeyMode(), basic.BasicMode(), client_credentials.ClientCredentialsMode()
)
