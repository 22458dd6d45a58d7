"""Pure OAuth 2 token request and response handling, shared by the flows and the refresher.

Values in, values out: callers do the HTTP. RFC 6749 §4.1.3 (code exchange), §6
(refresh), §4.4 (client credentials), §5.1/§5.2 (token and error responses).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote

import orjson

from terapi_common.errors import ProviderError
from terapi_common.providers import Provider


@dataclass(frozen=True)
class ClientCredentials:
    """An OAuth client as registered with the provider."""

    client_id: str
    client_secret: str | None = None


@dataclass(frozen=True)
class TokenRequest:
    """An HTTP request to a token endpoint, ready to send."""

    url: str
    headers: dict[str, str]
    form: dict[str, str] | None = None
    json: dict[str, str] | None = None
    params: dict[str, str] = field(default_factory=dict)


def build_token_request(
    provider: Provider, *, url: str, client: ClientCredentials, grant: Mapping[str, str],
    extra: Mapping[str, str] | None = None,
) -> TokenRequest:
    """The token request for `grant`, with client authentication as the provider wants it."""
    body = {**dict(extra or {}), **dict(grant)}
    headers = {"Accept": "application/json"}
    if provider.token_request_auth == "client_secret_basic" and client.client_secret is not None:
        # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
        pair = f"{quote(client.client_id, safe='')}:{quote(client.client_secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        body["client_id"] = client.client_id
        if client.client_secret is not None:
            body["client_secret"] = client.client_secret
    if provider.body_format == "json":
        return TokenRequest(url=url, headers=headers, json=body)
    return TokenRequest(url=url, headers=headers, form=body)


def parse_token_body(text: str, content_type: str) -> dict[str, Any]:
    """A token endpoint's body as a dict: JSON, or form-encoded as some providers send."""
    stripped = text.strip()
    if "json" in content_type or stripped.startswith("{"):
        try:
            body = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            raise invalid_token_response("the token response is not valid JSON") from None
        if not isinstance(body, dict):
            raise invalid_token_response("the token response is not a JSON object")
        return body
    if "x-www-form-urlencoded" in content_type or "text/plain" in content_type:
        pairs = parse_qsl(stripped, keep_blank_values=True)
        if pairs:
            return dict(pairs)
    raise invalid_token_response(f"the token response has an unreadable type ({content_type})")


def invalid_token_response(message: str) -> ProviderError:
    return ProviderError(message, code="invalid_token_response")


def error_in_token_response(status: int, body: Mapping[str, Any] | None) -> ProviderError | None:
    """RFC 6749 §5.2: an `error` field or a non-2xx status means the exchange failed."""
    error = body.get("error") if body else None
    # Slack answers HTTP 200 with {"ok": false, "error": ...} when it refuses.
    refused_in_body = bool(body) and body.get("ok") is False
    if status < 300 and not error and not refused_in_body:
        return None
    description = body.get("error_description") if body else None
    return ProviderError(
        f"the provider refused the token request: {error or f'HTTP {status}'}"
        + (f" ({description})" if description else ""),
        code="token_exchange_failed",
        provider_error=str(error) if error else None,
        provider_error_description=str(description) if description else None,
    )


def dotted_get(body: Mapping[str, Any], path: str | None) -> Any:
    """`authed_user.access_token` style lookups into nested token responses."""
    if not path:
        return None
    value: Any = body
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _expires_at(provider: Provider, body: Mapping[str, Any], now: datetime) -> datetime | None:
    paths = provider.token_response
    absolute = dotted_get(body, paths.expires_at)
    if absolute not in (None, ""):
        try:
            if isinstance(absolute, int | float) or str(absolute).isdigit():
                return datetime.fromtimestamp(float(absolute), tz=now.tzinfo)
            return datetime.fromisoformat(str(absolute).replace("Z", "+00:00"))
        except (ValueError, OverflowError):
            raise invalid_token_response("the token response has an unreadable expiry") from None
    seconds = dotted_get(body, paths.expires_in)
    if seconds in (None, ""):
        return None
    try:
        # Some providers send expires_in as a string: accept it as a number.
        return now + timedelta(seconds=int(float(seconds)))
    except (TypeError, ValueError, OverflowError):
        raise invalid_token_response("expires_in is not a number") from None


def normalize_token_response(
    provider: Provider, body: Mapping[str, Any], *, now: datetime,
    requested_scopes: list[str], previous_refresh_token: str | None = None,
    credential_type: str = "OAUTH2",
) -> dict[str, Any]:
    """Stored credentials from a token response, read with the provider's paths."""
    paths = provider.token_response
    access_token = dotted_get(body, paths.access_token)
    if not isinstance(access_token, str) or not access_token:
        raise invalid_token_response("the token response has no access token")
    refresh_token = dotted_get(body, paths.refresh_token) or previous_refresh_token
    granted = dotted_get(body, paths.scopes)
    if isinstance(granted, str):
        scopes = [s for s in granted.replace(",", " ").split() if s] if granted else []
    elif isinstance(granted, list):
        scopes = [str(s) for s in granted]
    else:
        scopes = list(requested_scopes)
    expires_at = _expires_at(provider, body, now)
    credentials: dict[str, Any] = {
        "type": credential_type,
        "access_token": access_token,
        "expires_at": expires_at.isoformat() if expires_at else None,
        "scopes": scopes,
        "requested_scopes": list(requested_scopes),
        "token_type": body.get("token_type"),
        "raw": dict(body),
    }
    if refresh_token:
        credentials["refresh_token"] = str(refresh_token)
    return credentials


def credentials_expiry(credentials: Mapping[str, Any]) -> datetime | None:
    value = credentials.get("expires_at")
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


GENERIC_URL_FIELDS = ("authorization_url", "token_url", "refresh_url", "revocation_url")


def resolve_provider(provider: Provider, provider_config: Mapping[str, Any] | None) -> Provider:
    """The provider with an integration's own settings applied (the generic `oauth2` entry).

    Integrations of the generic provider carry their URLs, PKCE and scope separator in
    `provider_config` (`{"urls": {...}, "pkce": bool, "scope_separator": str}`).
    """
    if not provider_config:
        return provider
    urls = provider_config.get("urls") or {}
    update: dict[str, Any] = {k: urls[k] for k in GENERIC_URL_FIELDS if urls.get(k)}
    if isinstance(provider_config.get("pkce"), bool):
        update["pkce"] = provider_config["pkce"]
    if isinstance(provider_config.get("scope_separator"), str):
        update["scope_separator"] = provider_config["scope_separator"]
    return provider.model_copy(update=update) if update else provider
