"""Request bodies and queries the vault accepts, validated field by field."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StringConstraints

INTEGRATION_ID = re.compile(r"[A-Za-z0-9_.-]{1,100}")
MAX_URL_LENGTH = 2048


def _http_url(value: str) -> str:
    parsed = urlsplit(value)
    if (
        parsed.scheme not in ("http", "https")
        or not parsed.hostname
        or len(value) > MAX_URL_LENGTH
        or any(c.isspace() for c in value)
    ):
        raise ValueError("must be an http or https URL")
    return value


def _integration_id(value: str) -> str:
    if not INTEGRATION_ID.fullmatch(value):
        raise ValueError("must be 1 to 100 letters, digits, '_', '.' or '-'")
    return value


HttpUrlText = Annotated[str, AfterValidator(_http_url)]
Scope = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^\S+$")]
Scopes = Annotated[list[Scope], Field(max_length=200)]
IntegrationId = Annotated[str, AfterValidator(_integration_id)]
OAuthType = Literal["OAUTH2", "OAUTH1", "OAUTH2_CC"]
ClientId = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
ClientSecret = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Separator = Annotated[str, StringConstraints(min_length=1, max_length=5)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OAuthUrls(Strict):
    """Endpoints of a generic OAuth 2 provider."""

    authorization_url: HttpUrlText
    token_url: HttpUrlText
    refresh_url: HttpUrlText | None = None
    revocation_url: HttpUrlText | None = None


class ProviderConfig(Strict):
    """Non-secret per-integration provider settings (generic OAuth 2)."""

    urls: OAuthUrls | None = None
    pkce: StrictBool | None = None
    scope_separator: Separator | None = None


class OAuthCredentials(ProviderConfig):
    """The app's OAuth client, as registered with the provider."""

    type: OAuthType
    client_id: ClientId
    client_secret: ClientSecret
    scopes: Scopes | None = None


class IntegrationCreate(Strict):
    """Body of POST /integrations."""

    integration_id: IntegrationId
    provider: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    credentials: OAuthCredentials | None = None
    scopes: Scopes | None = None
    provider_config: ProviderConfig | None = None


class CredentialsPatch(ProviderConfig):
    """The OAuth client fields a PATCH may change; the rest stay."""

    type: OAuthType | None = None
    client_id: ClientId | None = None
    client_secret: ClientSecret | None = None
    scopes: Scopes | None = None


class IntegrationPatch(Strict):
    """Body of PATCH /integrations/{integration_id}."""

    credentials: CredentialsPatch | None = None
    scopes: Scopes | None = None
    provider_config: ProviderConfig | None = None


class EnvironmentPatch(Strict):
    """Body of PATCH /environment; a URL set to null is removed."""

    webhook_url: HttpUrlText | None = None
    webhook_secondary_url: HttpUrlText | None = None
    callback_url: HttpUrlText | None = None
    send_new_connection_webhooks: StrictBool = True
    send_auth_failure_webhooks: StrictBool = False
    require_connect_sessions: StrictBool = False

    def changes(self) -> dict[str, object]:
        """Only the fields the request sent."""
        return self.model_dump(exclude_unset=True)


class ConnectionQuery(BaseModel):
    """Query of GET /connections."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    integration_id: Annotated[str, StringConstraints(max_length=100)] | None = None
    end_user_id: Annotated[str, StringConstraints(max_length=255)] | None = None
    search: Annotated[str, StringConstraints(max_length=255)] | None = None
    limit: int = Field(default=100, ge=1, le=100)
    cursor: Annotated[str, StringConstraints(max_length=2000)] | None = None
