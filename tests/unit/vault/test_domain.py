"""The vault's pure rules: integration settings, credential shapes, cursors, masking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from terapi_common.errors import InvalidInputError, NotFoundError
from terapi_vault import domain, views
from terapi_vault.domain import IntegrationSettings
from terapi_vault.inputs import IntegrationCreate, IntegrationPatch


@dataclass(frozen=True)
class FakeProvider:
    name: str
    auth_mode: str
    display_name: str = "Fake"
    authorization_url: str | None = None
    token_url: str | None = None
    is_generic: bool = False


GITHUBLIKE = FakeProvider("gh", "OAUTH2", authorization_url="https://a", token_url="https://t")
GENERIC = FakeProvider("oauth2", "OAUTH2", is_generic=True)
API_KEY = FakeProvider("api-key", "API_KEY")
CLIENT = {"type": "OAUTH2", "client_id": "id", "client_secret": "secret-long-enough"}
URLS = {"authorization_url": "https://idp.test/a", "token_url": "https://idp.test/t"}


def create(**body) -> IntegrationCreate:
    return IntegrationCreate.model_validate({"integration_id": "i", "provider": "p", **body})


def refused_code(call) -> str:
    with pytest.raises(InvalidInputError) as caught:
        call()
    return caught.value.code


def test_oauth_plan_keeps_client_and_scopes() -> None:
    settings = domain.plan_integration(create(credentials={**CLIENT, "scopes": ["a"]}), GITHUBLIKE)
    assert settings == IntegrationSettings(
        client_id="id", client_secret="secret-long-enough", scopes=["a"], provider_config={}
    )


def test_generic_plan_takes_urls_from_credentials_or_provider_config() -> None:
    inside = domain.plan_integration(create(credentials={**CLIENT, "urls": URLS}), GENERIC)
    beside = domain.plan_integration(
        create(credentials=CLIENT, provider_config={"urls": URLS}), GENERIC
    )
    assert inside.provider_config == beside.provider_config == {"urls": URLS}


def test_generic_plan_without_urls_is_refused() -> None:
    assert refused_code(lambda: domain.plan_integration(create(credentials=CLIENT), GENERIC)) == (
        "invalid_provider_config"
    )


def test_scopes_for_an_api_key_provider_are_refused() -> None:
    assert refused_code(lambda: domain.plan_integration(create(scopes=["x"]), API_KEY)) == (
        "invalid_credentials"
    )


def test_patch_keeps_what_it_does_not_name() -> None:
    current = IntegrationSettings(client_id="id", client_secret="old", scopes=["a"])
    patch = IntegrationPatch.model_validate({"credentials": {"client_id": "new-id"}})
    changed = domain.patch_integration(current, patch, GITHUBLIKE)
    assert changed == IntegrationSettings(client_id="new-id", client_secret="old", scopes=["a"])


def test_patch_null_removes_a_provider_setting() -> None:
    current = IntegrationSettings(
        client_id="id", client_secret="s", provider_config={"urls": URLS, "pkce": True}
    )
    patch = IntegrationPatch.model_validate({"provider_config": {"pkce": None}})
    assert domain.patch_integration(current, patch, GENERIC).provider_config == {"urls": URLS}


@pytest.mark.parametrize(("secret", "masked"), [
    ("abcdefghijkl", "****ijkl"), ("short", "****"), (None, None),
])
def test_secret_is_masked_to_its_last_four_characters_when_long(secret, masked) -> None:
    assert views.mask_secret(secret) == masked


def test_credentials_take_the_connection_auth_mode_as_type() -> None:
    assert domain.check_connection_credentials("API_KEY", {"api_key": "k"}) == {
        "type": "API_KEY", "api_key": "k"
    }


@pytest.mark.parametrize(("mode", "value"), [
    ("API_KEY", {"type": "BASIC", "api_key": "k"}),
    ("API_KEY", {"api_key": ""}),
    ("BASIC", {"password": "p"}),
    ("OAUTH2", {"refresh_token": "r"}),
    ("OAUTH1", {"oauth_token": "t"}),
    ("API_KEY", ["not", "an", "object"]),
])
def test_credentials_not_fitting_the_auth_mode_are_refused(mode, value) -> None:
    assert refused_code(lambda: domain.check_connection_credentials(mode, value)) == (
        "invalid_credentials"
    )


def test_refresh_token_is_removed_everywhere_unless_asked_for() -> None:
    credentials = {
        "type": "OAUTH2", "access_token": "a", "refresh_token": "r",
        "raw": {"access_token": "a", "refresh_token": "r"},
    }
    shown = domain.public_credentials(dict(credentials), include_refresh_token=False)
    assert shown == {"type": "OAUTH2", "access_token": "a", "raw": {"access_token": "a"}}
    assert domain.public_credentials(dict(credentials), include_refresh_token=True) == credentials


def test_ambiguous_connection_needs_an_integration_id() -> None:
    rows = [{"integration_id": "a"}, {"integration_id": "b"}]
    assert refused_code(lambda: domain.pick_connection(rows, "c", None)) == (
        "integration_id_required"
    )


def test_missing_connection_is_not_found() -> None:
    with pytest.raises(NotFoundError) as caught:
        domain.pick_connection([], "c", None)
    assert caught.value.code == "connection_not_found"


def test_cursor_round_trips() -> None:
    row = {"created_at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
           "integration_id": "i", "connection_id": "c"}
    assert domain.decode_cursor(domain.encode_cursor(row)) == (row["created_at"], "i", "c")


@pytest.mark.parametrize("cursor", ["", "!!!", "bm90IGpzb24", "WzEsMiwzXQ", "WyJ4IiwiaSIsImMiXQ"])
def test_foreign_cursor_is_refused(cursor: str) -> None:
    assert refused_code(lambda: domain.decode_cursor(cursor)) == "invalid_cursor"


def test_like_pattern_escapes_wildcards() -> None:
    assert domain.like_pattern("50%_a\\b") == "%50\\%\\_a\\\\b%"


def test_webhook_urls_skip_blanks_and_repeats() -> None:
    env = domain.Environment(
        id=1, name="dev", public_key="pk", callback_url=None, webhook_url="https://a",
        webhook_secondary_url="https://a", send_new_connection_webhooks=True,
        send_auth_failure_webhooks=False, require_connect_sessions=False,
    )
    assert domain.webhook_urls(env) == ["https://a"]


@pytest.mark.parametrize("connection_id", ["", "x" * 256, "tab\there"])
def test_bad_connection_id_is_refused(connection_id: str) -> None:
    assert refused_code(lambda: domain.check_connection_id(connection_id)) == (
        "invalid_connection_id"
    )
