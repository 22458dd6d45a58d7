"""Pure OAuth 2 token request and response handling, shared by the flows and the refresher.

Values in, values out: callers do the HTTP. RFC 6749 §4.1.3 (code exchange), §6
(refresh), §4.4 (client credentials), §5.1/§5.2 (token and error responses).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import orjson

from terapi_common.errors import ProviderError
from terapi_common.providers import Provider

FORM = "application/x-www-form-urlencoded"
MAX_PROVIDER_TEXT = 500  # a provider's own error text is cut here before logs and events
UNREADABLE = "the provider's token response is not JSON or a form"


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

    def encoded_body(self) -> tuple[str, bytes]:
        """The body's Content-Type and bytes, for senders that take a raw body."""
        if self.json is not None:
            return "application/json", orjson.dumps(self.json)
        return FORM, urlencode(self.form or {}).encode()


def build_token_request(
    provider: Provider, *, url: str, client: ClientCredentials, grant: Mapping[str, str],
    extra: Mapping[str, str] | None = None,
) -> TokenRequest:
    """The token request for `grant`, with client authentication as the provider wants it."""
    # The grant first and unchangeable: extra parameters never replace one of its fields.
    body = {**grant, **{k: v for k, v in (extra or {}).items() if k not in grant}}
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


def read_token_answer(status: int, content_type: str, text: str) -> dict[str, Any]:
    """A token endpoint's answer as a dict, or the refusal or unreadable answer it is."""
    body = _decoded(text, content_type)
    refused = error_in_token_response(status, body)
    if refused is not None:  # a refusal is one whatever its body looks like
        raise refused
    if body is None:
        raise invalid_token_response(UNREADABLE)
    return body


def _decoded(text: str, content_type: str) -> dict[str, Any] | None:
    stripped, kind = text.strip(), content_type.lower()
    if "json" in kind or stripped.startswith("{"):
        try:
            body = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return None
        return body if isinstance(body, dict) else None
    # GitHub and other older providers answer form-encoded whatever Accept says.
    if "x-www-form-urlencoded" in kind or "text/plain" in kind:
        return dict(parse_qsl(stripped, keep_blank_values=True)) or None
    return None


def invalid_token_response(message: str) -> ProviderError:
    return ProviderError(message, code="invalid_token_response")


def error_in_token_response(status: int, body: Mapping[str, Any] | None) -> ProviderError | None:
    """RFC 6749 §5.2: an `error` field or a non-2xx status means the exchange failed."""
    error = body.get("error") if body else None
    # Slack answers HTTP 200 with {"ok": false, "error": ...} when it refuses.
    refused_in_body = bool(body) and body.get("ok") is False
    if 200 <= status < 300 and not error and not refused_in_body:
        return None
    description = body.get("error_description") if body else None
    detail = f": {_clip(error)}" if error else f" (HTTP {status})"
    if error and description:
        detail += f": {_clip(description)}"
    return ProviderError(
        f"the provider refused the token request{detail}",
        code="token_exchange_failed",
        provider_error=_clip(error) if error else None,
        provider_error_description=_clip(description) if description else None,
    )


def _clip(value: Any) -> str:
    return str(value)[:MAX_PROVIDER_TEXT]


def dotted_get(body: Any, path: str | None) -> Any:
    """`authed_user.access_token` style lookups into nested JSON; a number picks a list item
    (`0.id`). None when any step is missing."""
    if not path:
        return None
    value: Any = body
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _expires_at(provider: Provider, body: Mapping[str, Any], now: datetime) -> datetime | None:
    paths = provider.token_response
    absolute = dotted_get(body, paths.expires_at)
    if absolute not in (None, ""):
        return _absolute_expiry(absolute)
    seconds = dotted_get(body, paths.expires_in)
    if seconds in (None, ""):
        return None
    try:
        # Some providers send expires_in as a string: accept it as a number.
        lifetime = int(float(seconds))
        # Zero or less states no lifetime; some providers send 0 for "does not expire".
        return (now + timedelta(seconds=lifetime)).astimezone(UTC) if lifetime > 0 else None
    except (TypeError, ValueError, OverflowError):
        raise invalid_token_response("expires_in is not a number") from None


def _absolute_expiry(value: Any) -> datetime:
    try:
        if isinstance(value, int | float) or str(value).isdigit():
            return datetime.fromtimestamp(float(value), tz=UTC)
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise invalid_token_response("the token response has an unreadable expiry") from None
    # An expiry without an offset is read as UTC.
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _granted_scopes(value: Any, separator: str) -> list[str] | None:
    """The scopes a token response grants; None when it does not say (RFC 6749 §5.1)."""
    if isinstance(value, list):
        return [str(s) for s in value if str(s)]
    if not isinstance(value, str) or not value.strip():
        return None
    # GitHub answers "repo,gist" although it takes scopes joined by spaces.
    for mark in (separator or " ", ","):
        value = value.replace(mark, " ")
    return value.split()


def normalize_token_response(
    provider: Provider, body: Mapping[str, Any], *, now: datetime,
    requested_scopes: Sequence[str], previous_refresh_token: str | None = None,
    credential_type: str = "OAUTH2",
) -> dict[str, Any]:
    """Stored credentials from a token response, read with the provider's paths.

    Values the response does not state (`refresh_token`, `expires_at`, `token_type`) are
    left out; without a granted scope the requested ones are kept.
    """
    paths = provider.token_response
    access_token = dotted_get(body, paths.access_token)
    if not isinstance(access_token, str) or not access_token:
        raise invalid_token_response("the provider's token response has no access token")
    credentials: dict[str, Any] = {"type": credential_type, "access_token": access_token}
    refresh_token = dotted_get(body, paths.refresh_token) or previous_refresh_token
    if refresh_token:
        credentials["refresh_token"] = str(refresh_token)
    expires_at = _expires_at(provider, body, now)
    if expires_at is not None:
        credentials["expires_at"] = expires_at.isoformat()
    if isinstance(body.get("token_type"), str):
        credentials["token_type"] = body["token_type"]
    granted = _granted_scopes(dotted_get(body, paths.scopes), provider.scope_separator)
    credentials["scopes"] = granted if granted is not None else list(requested_scopes)
    credentials["requested_scopes"] = list(requested_scopes)
    credentials["raw"] = dict(body)
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
    # Only generic entries take settings from the integration: a catalog provider keeps
    # its own URLs, so it is refreshed where it was authorized.
    if not provider_config or not provider.is_generic:
        return provider
    urls = provider_config.get("urls") or {}
    update: dict[str, Any] = {k: urls[k] for k in GENERIC_URL_FIELDS if urls.get(k)}
    if isinstance(provider_config.get("pkce"), bool):
        update["pkce"] = provider_config["pkce"]
    if isinstance(provider_config.get("scope_separator"), str):
        update["scope_separator"] = provider_config["scope_separator"]
    return provider.model_copy(update=update) if update else provider
