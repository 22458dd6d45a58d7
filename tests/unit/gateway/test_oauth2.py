"""OAuth 2 in the gateway: authorization URLs, PKCE and token requests as sent."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, parse_qsl, urlsplit

import orjson
import pytest

from terapi_common.errors import InvalidInputError
from terapi_common.providers import Provider
from terapi_gateway.providers import oauth2
from terapi_gateway.providers.oauth2 import OAuthClient


def provider(**fields) -> Provider:
    base = {"name": "p", "display_name": "P", "auth_mode": "OAUTH2",
            "authorization_url": "https://p.example.com/auth?x=1",
            "token_url": "https://p.example.com/token"}
    return Provider.model_validate({**base, **fields})


def test_authorization_url_keeps_the_providers_own_query() -> None:
    url = oauth2.authorization_url(
        provider(authorization_params={"access_type": "offline"}), client_id="c",
        redirect_uri="https://t/cb", state="s", scopes=["a", "b"], code_challenge=None,
        connection_config={}, extra_params={},
    )
    query = parse_qs(urlsplit(url).query)
    assert query["x"] == ["1"]
    assert query["access_type"] == ["offline"]
    assert query["scope"] == ["a b"]  # spaces encoded as %20, read back as a space
    assert "%20" in url and "+" not in url


def test_scope_param_name_comes_from_the_provider() -> None:
    url = oauth2.authorization_url(
        provider(scope_param="user_scope"), client_id="c", redirect_uri="r", state="s",
        scopes=["a"], code_challenge=None, connection_config={}, extra_params={},
    )
    assert parse_qs(urlsplit(url).query)["user_scope"] == ["a"]


def test_pkce_pair_is_an_s256_challenge_of_the_verifier() -> None:
    verifier, challenge = oauth2.pkce_pair()
    assert 43 <= len(verifier) <= 128
    assert challenge == oauth2.create_s256_code_challenge(verifier)
    assert oauth2.pkce_pair()[0] != verifier


def test_json_body_format_sends_json() -> None:
    request = oauth2.token_request(provider(body_format="json"), OAuthClient("c", "s"),
                                   grant={"grant_type": "authorization_code", "code": "x"},
                                   connection_config={})
    assert request.headers["Content-Type"] == "application/json"
    assert orjson.loads(request.body)["client_secret"] == "s"


def test_form_body_carries_the_grant_and_rendered_token_params() -> None:
    p = provider(token_url="https://${connection_config.tenant}.example.com/token",
                 token_params={"audience": "api-${connection_config.tenant}"},
                 connection_config={"tenant": {"title": "Tenant"}})
    request = oauth2.token_request(p, OAuthClient("c", "s"), grant={"grant_type": "x"},
                                   connection_config={"tenant": "acme"})
    assert (request.method, request.url) == ("POST", "https://acme.example.com/token")
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert dict(parse_qsl(request.body.decode())) == {
        "grant_type": "x", "audience": "api-acme", "client_id": "c", "client_secret": "s"}


def test_client_secret_basic_sends_the_client_only_in_the_header() -> None:
    request = oauth2.token_request(provider(token_request_auth="client_secret_basic"),
                                   OAuthClient("id:1", "s&2"), grant={"grant_type": "x"},
                                   connection_config={})
    header = request.headers["Authorization"].removeprefix("Basic ")
    assert base64.b64decode(header).decode() == "id%3A1:s%262"
    assert "client_secret" not in request.body.decode()


def test_provider_without_token_url_is_invalid_provider_config() -> None:
    generic = Provider.model_validate(
        {"name": "oauth2", "display_name": "G", "auth_mode": "OAUTH2", "categories": ["generic"]}
    )
    with pytest.raises(InvalidInputError) as caught:
        oauth2.token_request(generic, OAuthClient("c", "s"), grant={}, connection_config={})
    assert caught.value.code == "invalid_provider_config"
