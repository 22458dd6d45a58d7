"""RFC 6749 token requests and responses, as the gateway and the refresher read them."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import orjson
import pytest

from terapi_common.errors import ProviderError
from terapi_common.oauth2 import (
    ClientCredentials,
    build_token_request,
    credentials_expiry,
    dotted_get,
    error_in_token_response,
    normalize_token_response,
    read_token_answer,
    resolve_provider,
)
from terapi_common.providers import Provider, TokenResponse

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
GRANT = {"grant_type": "refresh_token", "refresh_token": "rt"}


def provider(**fields) -> Provider:
    base = {"name": "p", "display_name": "P", "auth_mode": "OAUTH2",
            "authorization_url": "https://p.example.com/auth",
            "token_url": "https://p.example.com/token"}
    return Provider.model_validate({**base, **fields})


# ---------------------------------------------------------------- requests


def test_client_secret_post_puts_the_client_in_the_form() -> None:
    request = build_token_request(provider(), url="https://t", grant=GRANT,
                                  client=ClientCredentials("c", "s"), extra={"aud": "x"})
    assert request.form == {"aud": "x", **GRANT, "client_id": "c", "client_secret": "s"}
    assert request.headers == {"Accept": "application/json"}


def test_basic_client_auth_form_encodes_both_parts() -> None:
    request = build_token_request(provider(token_request_auth="client_secret_basic"),
                                  url="https://t", grant=GRANT,
                                  client=ClientCredentials("id:1", "s&2"))
    header = request.headers["Authorization"].removeprefix("Basic ")
    assert base64.b64decode(header).decode() == "id%3A1:s%262"
    assert request.form == GRANT


def test_grant_wins_over_extra_params_of_the_same_name() -> None:
    request = build_token_request(provider(), url="https://t", grant=GRANT,
                                  client=ClientCredentials("c"), extra={"grant_type": "other"})
    assert request.form["grant_type"] == "refresh_token"


def test_form_body_is_encoded_with_its_content_type() -> None:
    request = build_token_request(provider(), url="https://t", grant={"code": "a b&c"},
                                  client=ClientCredentials("c", "s"))
    content_type, body = request.encoded_body()
    assert content_type == "application/x-www-form-urlencoded"
    assert dict(parse_qsl(body.decode())) == {"code": "a b&c", "client_id": "c",
                                             "client_secret": "s"}


def test_json_body_is_encoded_with_its_content_type() -> None:
    request = build_token_request(provider(body_format="json"), url="https://t", grant=GRANT,
                                  client=ClientCredentials("c", "s"))
    content_type, body = request.encoded_body()
    assert (content_type, orjson.loads(body)["client_id"]) == ("application/json", "c")


# ---------------------------------------------------------------- answers


def test_form_encoded_token_response_is_read() -> None:
    body = read_token_answer(200, "application/x-www-form-urlencoded",
                             "access_token=gho_1&scope=repo&token_type=bearer")
    assert body == {"access_token": "gho_1", "scope": "repo", "token_type": "bearer"}


def test_json_is_read_whatever_the_content_type_says() -> None:
    assert read_token_answer(200, "text/html", ' {"access_token": "a"}') == {"access_token": "a"}


def test_error_in_a_200_body_is_token_exchange_failed() -> None:
    with pytest.raises(ProviderError) as caught:
        read_token_answer(200, "application/json",
                          '{"error": "bad_verification_code", "error_description": "expired"}')
    assert caught.value.code == "token_exchange_failed"
    assert caught.value.message == (
        "the provider refused the token request: bad_verification_code: expired")
    assert (caught.value.provider_error, caught.value.provider_error_description) == (
        "bad_verification_code", "expired")


def test_slack_ok_false_in_a_200_body_is_token_exchange_failed() -> None:
    with pytest.raises(ProviderError) as caught:
        read_token_answer(200, "application/json", '{"ok": false, "access_token": "x"}')
    assert caught.value.code == "token_exchange_failed"
    assert caught.value.message == "the provider refused the token request (HTTP 200)"


def test_non_2xx_without_readable_body_is_token_exchange_failed() -> None:
    with pytest.raises(ProviderError) as caught:
        read_token_answer(503, "text/html", "<html>down</html>")
    assert caught.value.code == "token_exchange_failed"
    assert caught.value.message == "the provider refused the token request (HTTP 503)"


def test_provider_error_text_is_cut_to_a_bounded_length() -> None:
    refused = error_in_token_response(400, {"error": "e" * 2000, "error_description": "d" * 2000})
    assert refused is not None
    assert len(refused.provider_error or "") == len(refused.provider_error_description or "") == 500


def test_html_answer_is_invalid_token_response() -> None:
    with pytest.raises(ProviderError) as caught:
        read_token_answer(200, "text/html", "a=b")
    assert caught.value.code == "invalid_token_response"
    assert caught.value.message == "the provider's token response is not JSON or a form"


def test_broken_json_is_invalid_token_response() -> None:
    with pytest.raises(ProviderError) as caught:
        read_token_answer(200, "application/json", '{"access_token": ')
    assert caught.value.code == "invalid_token_response"


def test_json_array_is_invalid_token_response() -> None:
    with pytest.raises(ProviderError) as caught:
        read_token_answer(200, "application/json; charset=utf-8", '["access_token"]')
    assert caught.value.code == "invalid_token_response"


# ---------------------------------------------------------------- normalizing


def credentials(body: dict, spec: TokenResponse | None = None, **kw) -> dict:
    p = provider(token_response=spec or TokenResponse(),
                 scope_separator=kw.get("separator", " "))
    return normalize_token_response(p, body, now=NOW, requested_scopes=kw.get("requested", ["r"]),
                                    previous_refresh_token=kw.get("previous"))


def test_token_response_without_access_token_is_invalid_token_response() -> None:
    with pytest.raises(ProviderError) as caught:
        credentials({"access_token": ""})
    assert caught.value.code == "invalid_token_response"
    assert caught.value.message == "the provider's token response has no access token"


def test_full_response_is_normalized() -> None:
    found = credentials({"access_token": "a", "refresh_token": "rt", "expires_in": 3600,
                         "token_type": "Bearer", "scope": "x y"}, requested=["x"])
    assert found == {
        "type": "OAUTH2", "access_token": "a", "refresh_token": "rt",
        "expires_at": (NOW + timedelta(hours=1)).isoformat(), "token_type": "Bearer",
        "scopes": ["x", "y"], "requested_scopes": ["x"],
        "raw": {"access_token": "a", "refresh_token": "rt", "expires_in": 3600,
                "token_type": "Bearer", "scope": "x y"},
    }


def test_values_the_response_does_not_state_are_left_out() -> None:
    found = credentials({"access_token": "a"})
    assert not {"refresh_token", "expires_at", "token_type"} & set(found)


def test_previous_refresh_token_is_kept_when_none_is_issued() -> None:
    assert credentials({"access_token": "a"}, previous="rt-old")["refresh_token"] == "rt-old"


def test_expires_in_as_a_string_is_read_as_seconds() -> None:
    found = credentials({"access_token": "a", "expires_in": "120"})
    assert found["expires_at"] == (NOW + timedelta(seconds=120)).isoformat()
    assert credentials_expiry(found) == NOW + timedelta(seconds=120)


def test_expires_in_of_zero_means_no_expiry() -> None:
    assert "expires_at" not in credentials({"access_token": "a", "expires_in": 0})


def test_expires_in_that_is_not_a_number_is_invalid_token_response() -> None:
    with pytest.raises(ProviderError) as caught:
        credentials({"access_token": "a", "expires_in": "soon"})
    assert caught.value.code == "invalid_token_response"


def test_absolute_expiry_field_is_used_when_configured() -> None:
    spec = TokenResponse(expires_in=None, expires_at="expires_at")
    at_epoch = credentials({"access_token": "a", "expires_at": 1777777777}, spec)
    at_iso = credentials({"access_token": "a", "expires_at": "2026-06-01T02:00:00+02:00"}, spec)
    assert at_epoch["expires_at"] == datetime.fromtimestamp(1777777777, UTC).isoformat()
    assert at_iso["expires_at"] == "2026-06-01T00:00:00+00:00"


def test_absolute_expiry_without_offset_is_read_as_utc() -> None:
    spec = TokenResponse(expires_in=None, expires_at="expires_at")
    found = credentials({"access_token": "a", "expires_at": "2026-06-01T00:00:00"}, spec)
    assert found["expires_at"] == "2026-06-01T00:00:00+00:00"


def test_unreadable_absolute_expiry_is_invalid_token_response() -> None:
    spec = TokenResponse(expires_in=None, expires_at="expires_at")
    with pytest.raises(ProviderError) as caught:
        credentials({"access_token": "a", "expires_at": "next tuesday"}, spec)
    assert caught.value.code == "invalid_token_response"


def test_nested_paths_are_followed() -> None:
    spec = TokenResponse(access_token="authed_user.access_token", scopes="authed_user.scope")
    found = credentials({"authed_user": {"access_token": "xoxp", "scope": "a,b"}}, spec,
                        separator=",")
    assert (found["access_token"], found["scopes"]) == ("xoxp", ["a", "b"])


def test_comma_separated_grant_is_split_whatever_the_separator() -> None:
    # GitHub takes space-separated scopes but answers "repo,gist".
    assert credentials({"access_token": "a", "scope": "repo,gist"})["scopes"] == ["repo", "gist"]


def test_grant_is_split_on_the_providers_own_separator() -> None:
    found = credentials({"access_token": "a", "scope": "a;b"}, separator=";")
    assert found["scopes"] == ["a", "b"]


def test_granted_scope_list_is_kept() -> None:
    assert credentials({"access_token": "a", "scope": ["x", ""]})["scopes"] == ["x"]


def test_without_a_granted_scope_the_requested_ones_are_kept() -> None:
    assert credentials({"access_token": "a"}, requested=["x", "y"])["scopes"] == ["x", "y"]
    assert credentials({"access_token": "a", "scope": " "}, requested=["x"])["scopes"] == ["x"]


# ---------------------------------------------------------------- generic provider


def test_generic_provider_takes_urls_pkce_and_separator_from_the_integration() -> None:
    generic = Provider.model_validate(
        {"name": "oauth2", "display_name": "G", "auth_mode": "OAUTH2", "categories": ["generic"]}
    )
    resolved = resolve_provider(generic, {"urls": {"authorization_url": "https://a",
                                                   "token_url": "https://t"},
                                          "pkce": True, "scope_separator": ","})
    assert (resolved.authorization_url, resolved.token_url) == ("https://a", "https://t")
    assert (resolved.pkce, resolved.scope_separator) == (True, ",")


def test_provider_without_integration_settings_is_unchanged() -> None:
    p = provider()
    assert resolve_provider(p, {}) is p


def test_catalog_provider_keeps_its_own_urls_whatever_the_integration_says() -> None:
    """Only the generic entry takes URLs from the integration: a listed provider is
    refreshed at the token URL it was authorized with."""
    listed = provider(token_url="https://listed.example/token")
    resolved = resolve_provider(listed, {"urls": {"token_url": "https://elsewhere/token"}})
    assert resolved.token_url == "https://listed.example/token"


def test_dotted_paths_walk_objects_and_list_items() -> None:
    answer = [{"id": "site-1", "url": "https://acme.atlassian.net"}, {"id": "site-2"}]
    assert dotted_get(answer, "0.id") == "site-1"
    assert dotted_get(answer, "1.id") == "site-2"
    assert dotted_get({"team": {"id": "T1"}}, "team.id") == "T1"
    for missing in ("2.id", "0.name", "id", "-1.id"):
        assert dotted_get(answer, missing) is None
