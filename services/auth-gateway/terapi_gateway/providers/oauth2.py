"""OAuth 2: the authorization URL, token requests and what a token response means.

Pure rules (no I/O): handlers send the requests built here and hand the answers back.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import orjson
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from terapi_common.errors import InvalidInputError
from terapi_common.events import AuthMode
from terapi_common.providers import Provider, TokenResponse, interpolate, render_params
from terapi_gateway.errors import InvalidTokenResponseError, TokenExchangeFailedError

GENERIC_URL_FIELDS = ("authorization_url", "token_url", "refresh_url", "revocation_url")
MAX_PROVIDER_TEXT = 500


@dataclass(frozen=True)
class OAuthClient:
    """The app's client at the provider, unsealed from the integration's config."""

    client_id: str
    client_secret: str | None
    provider_config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoints:
    """Where and how to talk to the provider, once generic settings are applied."""

    authorization_url: str | None
    token_url: str | None
    pkce: bool
    scope_separator: str


@dataclass(frozen=True)
class ProviderRequest:
    """An HTTP request to a provider, ready to send."""

    method: Literal["GET", "POST", "HEAD"]
    url: str
    headers: dict[str, str]
    body: bytes | None = None


def client_from_config(config: Mapping[str, Any] | None) -> OAuthClient | None:
    """The OAuth client in an integration's unsealed config, if it has one."""
    if not config or not config.get("client_id"):
        return None
    return OAuthClient(
        client_id=str(config["client_id"]),
        client_secret=config.get("client_secret"),
        provider_config=config.get("provider_config") or {},
    )


def endpoints(provider: Provider, provider_config: Mapping[str, Any]) -> Endpoints:
    """The provider's URLs; a generic provider takes them from the integration's settings."""
    urls = {name: getattr(provider, name) for name in GENERIC_URL_FIELDS}
    pkce, separator = provider.pkce, provider.scope_separator
    if provider.is_generic:
        nested = provider_config.get("urls") or {}
        for name in GENERIC_URL_FIELDS:
            urls[name] = provider_config.get(name) or nested.get(name) or urls[name]
        pkce = bool(provider_config.get("pkce", pkce))
        separator = provider_config.get("scope_separator") or separator
    return Endpoints(urls["authorization_url"], urls["token_url"], pkce, separator)


def pkce_pair() -> tuple[str, str]:
    """A fresh code verifier and its S256 challenge (RFC 7636 §4.1, §4.2)."""
    verifier = secrets.token_urlsafe(64)  # 86 characters, inside the 43..128 the RFC allows
    return verifier, create_s256_code_challenge(verifier)


def add_query(url: str, params: Sequence[tuple[str, str]]) -> str:
    """`url` with `params` appended to whatever query it already has."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params)
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def authorization_url(
    provider: Provider,
    ends: Endpoints,
    *,
    client_id: str,
    redirect_uri: str,
    state: str,
    scopes: Sequence[str],
    code_challenge: str | None,
    connection_config: Mapping[str, Any],
    extra_params: Mapping[str, str],
) -> str:
    """Where to send the end user for consent (RFC 6749 §4.1.1, RFC 7636 §4.3)."""
    if not ends.authorization_url:
        raise InvalidInputError(
            "the integration has no authorization_url", code="invalid_provider_config"
        )
    base = interpolate(ends.authorization_url, connection_config=connection_config)
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        **render_params(provider.authorization_params, connection_config=connection_config),
        **extra_params,
    }
    if scopes:
        params[provider.scope_param] = ends.scope_separator.join(scopes)
    if code_challenge is not None:
        params |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
    return add_query(base, list(params.items()))


def token_request(
    provider: Provider,
    ends: Endpoints,
    client: OAuthClient,
    *,
    grant: Mapping[str, str],
    connection_config: Mapping[str, Any],
) -> ProviderRequest:
    """A token endpoint request with the client authenticated as the provider wants it."""
    if not ends.token_url:
        raise InvalidInputError("the integration has no token_url", code="invalid_provider_config")
    url = interpolate(ends.token_url, connection_config=connection_config)
    body = {**grant, **render_params(provider.token_params, connection_config=connection_config)}
    headers = {"Accept": "application/json"}
    if provider.token_request_auth == "client_secret_basic":
        headers["Authorization"] = basic_client_auth(client.client_id, client.client_secret or "")
    else:
        body |= {"client_id": client.client_id, "client_secret": client.client_secret or ""}
    if provider.body_format == "json":
        headers["Content-Type"] = "application/json"
        return ProviderRequest("POST", url, headers, orjson.dumps(body))
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return ProviderRequest("POST", url, headers, urlencode(body).encode())


def basic_client_auth(client_id: str, client_secret: str) -> str:
    """RFC 6749 §2.3.1: both parts form-encoded before they are joined and base64-encoded."""
    pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def parse_token_body(status: int, content_type: str, text: str) -> dict[str, Any]:
    """The token response as a dict, or the failure it reports (RFC 6749 §5.1, §5.2)."""
    body = _decode_body(content_type, text)
    error = body.get("error") if body is not None else None
    if not 200 <= status < 300 or error:
        raise TokenExchangeFailedError(
            _provider_message("the provider refused the token request", body, status),
            provider_error=_clip(error),
            provider_error_description=_clip((body or {}).get("error_description")),
        )
    if body is None:
        raise InvalidTokenResponseError("the provider's token response is not JSON or a form")
    return body


def _decode_body(content_type: str, text: str) -> dict[str, Any] | None:
    try:
        decoded = orjson.loads(text)
    except orjson.JSONDecodeError:
        decoded = None
    if isinstance(decoded, dict):
        return decoded
    # GitHub and other older providers answer form-encoded whatever Accept says.
    if "x-www-form-urlencoded" in content_type or content_type.startswith("text/plain"):
        pairs = parse_qsl(text.strip(), keep_blank_values=True)
        if pairs:
            return dict(pairs)
    return None


def _provider_message(prefix: str, body: Mapping[str, Any] | None, status: int) -> str:
    if body and body.get("error"):
        description = body.get("error_description")
        detail = f"{_clip(body['error'])}" + (f": {_clip(description)}" if description else "")
        return f"{prefix}: {detail}"
    return f"{prefix} (HTTP {status})"


def _clip(value: Any) -> str | None:
    return None if value is None else str(value)[:MAX_PROVIDER_TEXT]


def read_path(body: Mapping[str, Any], path: str | None) -> Any:
    """A value at a dotted path of a JSON body (`data.access_token`), or None."""
    if not path:
        return None
    value: Any = body
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def token_credentials(
    body: Mapping[str, Any],
    spec: TokenResponse,
    *,
    auth_mode: AuthMode,
    requested_scopes: Sequence[str],
    separator: str,
    now: datetime,
) -> dict[str, Any]:
    """Normalized credentials from a token response; a response without a token is refused."""
    access_token = read_path(body, spec.access_token)
    if not isinstance(access_token, str) or not access_token:
        raise InvalidTokenResponseError("the provider's token response has no access token")
    credentials: dict[str, Any] = {"type": auth_mode, "access_token": access_token}
    refresh_token = read_path(body, spec.refresh_token)
    if isinstance(refresh_token, str) and refresh_token:
        credentials["refresh_token"] = refresh_token
    expires_at = token_expiry(body, spec, now=now)
    if expires_at is not None:
        credentials["expires_at"] = expires_at.isoformat()
    if isinstance(body.get("token_type"), str):
        credentials["token_type"] = body["token_type"]
    granted = granted_scopes(read_path(body, spec.scopes), separator)
    credentials["scopes"] = granted if granted is not None else list(requested_scopes)
    credentials["requested_scopes"] = list(requested_scopes)
    credentials["raw"] = dict(body)
    return credentials


def token_expiry(body: Mapping[str, Any], spec: TokenResponse, *, now: datetime) -> datetime | None:
    """When the access token expires, from `expires_in` or an absolute expiry field."""
    # Force int: several providers send expires_in as a string.
    seconds = _as_int(read_path(body, spec.expires_in))
    if seconds is not None and seconds > 0:
        return (now + timedelta(seconds=seconds)).astimezone(UTC)
    absolute = read_path(body, spec.expires_at)
    if isinstance(absolute, int | float) or _as_int(absolute) is not None:
        return datetime.fromtimestamp(float(absolute), UTC)
    if isinstance(absolute, str):
        try:
            parsed = datetime.fromisoformat(absolute.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def granted_scopes(value: Any, separator: str) -> list[str] | None:
    """The scopes a token response grants (a string on the separator, or a list)."""
    if isinstance(value, list):
        return [str(s) for s in value if str(s)]
    if isinstance(value, str) and value.strip():
        # Some providers answer with spaces whatever separator they take in requests.
        parts = value.split(separator) if separator in value else value.split()
        return [p.strip() for p in parts if p.strip()]
    return None


def captured_values(
    provider: Provider, *, token: Mapping[str, Any], callback: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """Connection config the provider hands back, and the fields refused for their shape."""
    found: dict[str, str] = {}
    refused: list[str] = []
    sources = [(provider.capture_from_token_response, lambda p: read_path(token, p)),
               (provider.capture_from_callback, callback.get)]
    for mapping, read in sources:
        for name, where in mapping.items():
            value = read(where)
            if value is None or value == "":
                continue
            if isinstance(value, str) and provider.connection_config[name].matches(value):
                found[name] = value
            else:
                refused.append(name)
    return found, refused
