"""OAuth 2 rules: authorization URLs, token requests and reading token responses."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from terapi_common.providers import Provider, TokenResponse
from terapi_gateway.errors import InvalidTokenResponseError, TokenExchangeFailedError
from terapi_gateway.providers import oauth2
from terapi_gateway.providers.oauth2 import OAuthClient

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def provider(**fields) -> Provider:
    base = {"name": "p", "display_name": "P", "auth_mode": "OAUTH2",
            "authorization_url": "https://p.example.com/auth?x=1",
            "token_url": "https://p.example.com/token"}
    return Provider.model_validate({**base, **fields})


def test_authorization_url_keeps_the_providers_own_query() -> None:
    p = provider(authorization_params={"access_type": "offline"})
    url = oauth2.authorization_url(
        p, oauth2.endpoints(p, {}), client_id="c", redirect_uri="https://t/cb", state="s",
        scopes=["a", "b"], code_challenge=None, connection_config={}, extra_params={},
    )
    query = parse_qs(urlsplit(url).query)
    assert query["x"] == ["1"]
    assert query["access_type"] == ["offline"]
    assert query["scope"] == ["a b"]  # spaces encoded as %20, read back as a space
    assert "%20" in url and "+" not in url


def test_scope_param_name_comes_from_the_provider() -> None:
    p = provider(scope_param="user_scope")
    url = oauth2.authorization_url(
        p, oauth2.endpoints(p, {}), client_id="c", redirect_uri="r", state="s", scopes=["a"],
        code_challenge=None, connection_config={}, extra_params={},
    )
    assert parse_qs(urlsplit(url).query)["user_scope"] == ["a"]


def test_pkce_pair_is_an_s256_challenge_of_the_verifier() -> None:
    verifier, challenge = oauth2.pkce_pair()
    assert 43 <= len(verifier) <= 128
    assert challenge == oauth2.create_s256_code_challenge(verifier)
    assert oauth2.pkce_pair()[0] != verifier


def test_json_body_format_sends_json() -> None:
    p = provider(body_format="json")
    request = oauth2.token_request(p, oauth2.endpoints(p, {}), OAuthClient("c", "s"),
                                   grant={"grant_type": "authorization_code", "code": "x"},
                                   connection_config={})
    assert request.headers["Content-Type"] == "application/json"
    assert orjson.loads(request.body)["client_secret"] == "s"


def test_basic_client_auth_form_encodes_both_parts() -> None:
    header = oauth2.basic_client_auth("id:1", "s&2")
    assert base64.b64decode(header.removeprefix("Basic ")).decode() == "id%3A1:s%262"


def test_form_encoded_token_response_is_read() -> None:
    body = oauth2.parse_token_body(
        200, "application/x-www-form-urlencoded", "access_token=gho_1&scope=repo&token_type=bearer"
    )
    assert body == {"access_token": "gho_1", "scope": "repo", "token_type": "bearer"}


def test_error_in_a_200_body_is_token_exchange_failed() -> None:
    with pytest.raises(TokenExchangeFailedError) as caught:
        oauth2.parse_token_body(200, "application/json", '{"error": "bad_verification_code"}')
    assert caught.value.provider_error == "bad_verification_code"


def test_non_2xx_without_body_is_token_exchange_failed() -> None:
    with pytest.raises(TokenExchangeFailedError, match="HTTP 503"):
        oauth2.parse_token_body(503, "text/html", "<html>down</html>")


def test_html_answer_is_invalid_token_response() -> None:
    with pytest.raises(InvalidTokenResponseError):
        oauth2.parse_token_body(200, "text/html", "a=b")


def credentials(body: dict, spec: TokenResponse | None = None, **kw) -> dict:
    return oauth2.token_credentials(
        body, spec or TokenResponse(), auth_mode="OAUTH2",
        requested_scopes=kw.get("requested", ["r"]), separator=kw.get("separator", " "), now=NOW,
    )


def test_expires_in_as_a_string_is_read_as_seconds() -> None:
    found = credentials({"access_token": "a", "expires_in": "120"})
    assert found["expires_at"] == (NOW + timedelta(seconds=120)).isoformat()


def test_absolute_expiry_field_is_used_when_configured() -> None:
    spec = TokenResponse(expires_in=None, expires_at="expires_at")
    at_epoch = credentials({"access_token": "a", "expires_at": 1777777777}, spec)
    at_iso = credentials({"access_token": "a", "expires_at": "2026-06-01T00:00:00Z"}, spec)
    assert at_epoch["expires_at"] == datetime.fromtimestamp(1777777777, UTC).isoformat()
    assert at_iso["expires_at"] == "2026-06-01T00:00:00+00:00"


def test_nested_paths_are_followed() -> None:
    spec = TokenResponse(access_token="authed_user.access_token", scopes="authed_user.scope")
    found = credentials({"authed_user": {"access_token": "xoxp", "scope": "a,b"}}, spec,
                        separator=",")
    assert (found["access_token"], found["scopes"]) == ("xoxp", ["a", "b"])


def test_without_a_granted_scope_the_requested_ones_are_kept() -> None:
    assert credentials({"access_token": "a"}, requested=["x", "y"])["scopes"] == ["x", "y"]


def test_no_expiry_means_no_expires_at() -> None:
    assert "expires_at" not in credentials({"access_token": "a"})


def test_generic_provider_reads_flat_or_nested_urls() -> None:
    generic = Provider.model_validate(
        {"name": "oauth2", "display_name": "G", "auth_mode": "OAUTH2", "categories": ["generic"]}
    )
    nested = oauth2.endpoints(generic, {"urls": {"authorization_url": "https://a",
                                                 "token_url": "https://t"}, "pkce": True})
    flat = oauth2.endpoints(generic, {"authorization_url": "https://a2", "token_url": "https://t2",
                                      "scope_separator": ","})
    assert (nested.authorization_url, nested.token_url, nested.pkce) == ("https://a", "https://t",
                                                                         True)
    assert (flat.authorization_url, flat.scope_separator, flat.pkce) == ("https://a2", ",", False)
