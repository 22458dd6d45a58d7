"""OAuth 1.0a (RFC 5849): signed token requests and the provider's form answers.

Requests are signed with authlib's OAuth 1 client signing and sent by the caller; no I/O
here. OAuth 1 has no `state`: the request token names the flow on the callback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth1.rfc5849.client_auth import ClientAuth

from terapi_common.oauth2 import FORM, MAX_PROVIDER_TEXT
from terapi_common.providers import Provider, interpolate, render_params
from terapi_gateway.errors import InvalidTokenResponseError, TokenExchangeFailedError
from terapi_gateway.providers.oauth2 import OAuthClient, ProviderRequest, add_query


def _signed(url: str, auth: ClientAuth) -> ProviderRequest:
    signed_url, headers, body = auth.sign("POST", url, {"Content-Type": FORM}, b"")
    return ProviderRequest("POST", signed_url, dict(headers), body or None)


def _signature_method(provider: Provider) -> str:
    return provider.signature_method or "HMAC-SHA1"


def request_token_request(
    provider: Provider, client: OAuthClient, *, callback_url: str,
    connection_config: Mapping[str, Any],
) -> ProviderRequest:
    """RFC 5849 §2.1: ask for temporary credentials, naming where to come back."""
    url = interpolate(provider.request_token_url or "", connection_config=connection_config)
    auth = ClientAuth(
        client.client_id, client.client_secret, redirect_uri=callback_url,
        signature_method=_signature_method(provider),
    )
    return _signed(url, auth)


def access_token_request(
    provider: Provider, client: OAuthClient, *, token: str, token_secret: str, verifier: str,
    connection_config: Mapping[str, Any],
) -> ProviderRequest:
    """RFC 5849 §2.3: trade the authorized request token and its verifier for token credentials."""
    url = interpolate(provider.token_url or "", connection_config=connection_config)
    auth = ClientAuth(
        client.client_id, client.client_secret, token=token, token_secret=token_secret,
        verifier=verifier, signature_method=_signature_method(provider),
    )
    return _signed(url, auth)


def authorization_url(
    provider: Provider, *, request_token: str, scopes: Sequence[str],
    connection_config: Mapping[str, Any], extra_params: Mapping[str, str],
) -> str:
    """RFC 5849 §2.2: where the end user approves the request token."""
    base = interpolate(provider.authorization_url or "", connection_config=connection_config)
    params = {
        "oauth_token": request_token,
        **render_params(provider.authorization_params, connection_config=connection_config),
        **extra_params,
    }
    if scopes:
        params[provider.scope_param] = provider.scope_separator.join(scopes)
    return add_query(base, list(params.items()))


def parse_token_form(status: int, text: str, *, what: str) -> dict[str, str]:
    """A token answer (`oauth_token=…&oauth_token_secret=…`), or why it is refused."""
    if not 200 <= status < 300:
        problem = dict(parse_qsl(text.strip())).get("oauth_problem")
        detail = f": {problem[:MAX_PROVIDER_TEXT]}" if problem else f" (HTTP {status})"
        raise TokenExchangeFailedError(
            f"the provider refused the {what} request{detail}", provider_error=problem
        )
    values = dict(parse_qsl(text.strip(), keep_blank_values=True))
    if not values.get("oauth_token") or not values.get("oauth_token_secret"):
        raise InvalidTokenResponseError(f"the provider's {what} answer has no token and secret")
    return values


def oauth1_credentials(values: Mapping[str, str]) -> dict[str, Any]:
    """What the vault stores for an OAuth 1 connection."""
    return {
        "type": "OAUTH1",
        "oauth_token": values["oauth_token"],
        "oauth_token_secret": values["oauth_token_secret"],
        "raw": dict(values),
    }
