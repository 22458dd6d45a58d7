"""OAuth 2 in the gateway: the authorization URL, PKCE, and token requests as sent.

Pure rules (no I/O): handlers send the requests built here and hand the answers back.
Token requests, client authentication and token responses follow the shared RFC 6749
rules in `terapi_common.oauth2`; this module adds what only the flows need.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from terapi_common.errors import InvalidInputError
from terapi_common.oauth2 import ClientCredentials, build_token_request, dotted_get
from terapi_common.providers import Provider, interpolate, render_params


@dataclass(frozen=True)
class OAuthClient:
    """The app's client at the provider, unsealed from the integration's config."""

    client_id: str
    client_secret: str | None
    provider_config: Mapping[str, Any] = field(default_factory=dict)


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
    if not provider.authorization_url:
        raise InvalidInputError(
            "the integration has no authorization_url", code="invalid_provider_config"
        )
    base = interpolate(provider.authorization_url, connection_config=connection_config)
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        **render_params(provider.authorization_params, connection_config=connection_config),
        **extra_params,
    }
    if scopes:
        params[provider.scope_param] = provider.scope_separator.join(scopes)
    if code_challenge is not None:
        params |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
    return add_query(base, list(params.items()))


def token_request(
    provider: Provider,
    client: OAuthClient,
    *,
    grant: Mapping[str, str],
    connection_config: Mapping[str, Any],
) -> ProviderRequest:
    """A token endpoint request with the client authenticated as the provider wants it."""
    if not provider.token_url:
        raise InvalidInputError("the integration has no token_url", code="invalid_provider_config")
    request = build_token_request(
        provider,
        url=interpolate(provider.token_url, connection_config=connection_config),
        # The gateway always authenticates with a secret, empty when the client has none.
        client=ClientCredentials(client.client_id, client.client_secret or ""),
        grant=grant,
        extra=render_params(provider.token_params, connection_config=connection_config),
    )
    content_type, body = request.encoded_body()
    return ProviderRequest("POST", request.url, request.headers | {"Content-Type": content_type},
                           body)


def captured_values(
    provider: Provider, *, token: Mapping[str, Any], callback: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """Connection config the provider hands back, and the fields refused for their shape."""
    found: dict[str, str] = {}
    refused: list[str] = []
    sources = [(provider.capture_from_token_response, lambda p: dotted_get(token, p)),
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
