"""Calls to providers: token requests and credential checks, with their failures named."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import aiohttp

from terapi_common.oauth2 import normalize_token_response, read_token_answer
from terapi_common.providers import Provider
from terapi_gateway.errors import (
    ConnectionMetadataUnavailableError,
    ConnectionTestFailedError,
    MissingCredentialsError,
    TokenExchangeFailedError,
)
from terapi_gateway.outbound import ProviderUnreachableError, send
from terapi_gateway.providers import oauth1, oauth2
from terapi_gateway.providers.capture import capture_request, read_captured
from terapi_gateway.providers.oauth2 import OAuthClient, ProviderRequest
from terapi_gateway.providers.verification import verification_request


async def _token_answer(http: aiohttp.ClientSession, request: ProviderRequest) -> Any:
    try:
        return await send(http, request)
    except ProviderUnreachableError:
        raise TokenExchangeFailedError(
            "the provider's token endpoint could not be reached"
        ) from None


async def fetch_oauth2_token(
    http: aiohttp.ClientSession, provider: Provider, client: OAuthClient, *,
    grant: Mapping[str, str], connection_config: Mapping[str, Any],
) -> dict[str, Any]:
    """POST a grant to the token endpoint; the token response body (RFC 6749 §5.1).

    A refusal is `token_exchange_failed` and an unreadable answer `invalid_token_response`
    (raised by `terapi_common.oauth2` with the codes of the gateway's errors).
    """
    request = oauth2.token_request(
        provider, client, grant=grant, connection_config=connection_config
    )
    answer = await _token_answer(http, request)
    return read_token_answer(answer.status, answer.content_type, answer.text)


async def client_credentials_token(
    http: aiohttp.ClientSession, provider: Provider, client: OAuthClient, *,
    scopes: Sequence[str], connection_config: Mapping[str, Any], now: datetime,
) -> dict[str, Any]:
    """An app-only token (RFC 6749 §4.4), normalized into OAUTH2_CC credentials."""
    grant = {"grant_type": "client_credentials"}
    if scopes:
        grant["scope"] = provider.scope_separator.join(scopes)
    body = await fetch_oauth2_token(
        http, provider, client, grant=grant, connection_config=connection_config
    )
    credentials = normalize_token_response(
        provider, body, now=now, requested_scopes=scopes, credential_type="OAUTH2_CC"
    )
    credentials.pop("refresh_token", None)  # client credentials never need one (§4.4.3)
    return credentials


async def oauth1_request_token(
    http: aiohttp.ClientSession, provider: Provider, client: OAuthClient, *,
    callback_url: str, connection_config: Mapping[str, Any],
) -> dict[str, str]:
    """Temporary credentials for a new OAuth 1 flow."""
    request = oauth1.request_token_request(
        provider, client, callback_url=callback_url, connection_config=connection_config
    )
    answer = await _token_answer(http, request)
    return oauth1.parse_token_form(answer.status, answer.text, what="request token")


async def oauth1_access_token(
    http: aiohttp.ClientSession, provider: Provider, client: OAuthClient, *,
    token: str, token_secret: str, verifier: str, connection_config: Mapping[str, Any],
) -> dict[str, str]:
    """Token credentials for an approved OAuth 1 request token."""
    request = oauth1.access_token_request(
        provider, client, token=token, token_secret=token_secret, verifier=verifier,
        connection_config=connection_config,
    )
    answer = await _token_answer(http, request)
    return oauth1.parse_token_form(answer.status, answer.text, what="access token")


async def verify_credentials(
    http: aiohttp.ClientSession, provider: Provider, *, credentials: Mapping[str, Any],
    connection_config: Mapping[str, Any],
) -> None:
    """Make the provider's check request; a refusal or no answer fails the attempt."""
    if provider.verification is None:
        return
    request = verification_request(
        provider.verification, auth_mode=provider.auth_mode, credentials=credentials,
        connection_config=connection_config,
    )
    try:
        answer = await send(http, request)
    except ProviderUnreachableError:
        raise ConnectionTestFailedError(
            f"{provider.display_name} could not be reached to check the credentials",
            http_status=502,
        ) from None
    if answer.status not in provider.verification.success_statuses:
        raise ConnectionTestFailedError(
            f"{provider.display_name} did not accept the credentials (HTTP {answer.status})"
        )


async def fetch_captured_config(
    http: aiohttp.ClientSession, provider: Provider, *, access_token: str,
    connection_config: Mapping[str, Any],
) -> dict[str, str]:
    """The connection config the provider's API tells after authorization (nothing when the
    catalog asks for no capture request); failing to get all of it fails the attempt."""
    capture = provider.capture_from_request
    if capture is None:
        return {}
    request = capture_request(capture, access_token=access_token,
                              connection_config=connection_config)
    try:
        answer = await send(http, request)
    except ProviderUnreachableError:
        raise ConnectionMetadataUnavailableError(
            f"{provider.display_name} could not be reached for the connection's details"
        ) from None
    if not 200 <= answer.status < 300:
        raise ConnectionMetadataUnavailableError(
            f"{provider.display_name} refused the request for the connection's details "
            f"(HTTP {answer.status})"
        )
    found, unusable = read_captured(capture, provider.connection_config, answer.text)
    if unusable:
        raise ConnectionMetadataUnavailableError(
            f"{provider.display_name} did not tell {', '.join(unusable)} in the expected shape"
        )
    return found


def require_client(client: OAuthClient | None) -> OAuthClient:
    """The integration's OAuth client; an integration without one cannot run OAuth."""
    if client is None:
        raise MissingCredentialsError(
            "the integration has no OAuth client_id and client_secret; set them first"
        )
    return client
