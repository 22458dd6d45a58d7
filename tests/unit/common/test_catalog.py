"""The provider catalog: shipped entries are valid and complete, extra files merge in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from terapi_common.errors import InvalidInputError
from terapi_common.providers import (
    CATALOG_FILE,
    Catalog,
    CatalogError,
    FieldSpec,
    Provider,
    interpolate,
    load_catalog,
    parse_catalog_text,
    render_params,
)

CATALOG = load_catalog()
SHIPPED = CATALOG.all()
SPECIFIC = [p for p in SHIPPED if not p.is_generic]
OAUTH_MODES = {"OAUTH2", "OAUTH1", "OAUTH2_CC"}
PLACEHOLDER = re.compile(r"^\$\{connection_config\.([A-Za-z_][A-Za-z0-9_]*)\}")
HOSTILE_VALUES = ["evil.com/x", "evil.com#", "acme.evil.com/", "../x", "a\nb", ""]


def _ids(providers: list[Provider]) -> list[str]:
    return [p.name for p in providers]


def _config_fields() -> list[tuple[str, str, FieldSpec]]:
    return [
        (p.name, name, spec) for p in SHIPPED for name, spec in p.connection_config.items()
    ]


def _all_field_specs() -> list[tuple[str, str, FieldSpec]]:
    return _config_fields() + [
        (p.name, name, spec) for p in SHIPPED for name, spec in p.credentials.items()
    ]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- Every shipped entry -----------------------------------------------------------------


def test_shipped_file_parses_into_the_catalog() -> None:
    parsed = parse_catalog_text(CATALOG_FILE.read_text(), source=CATALOG_FILE.name)
    assert set(parsed) == {p.name for p in SHIPPED}


@pytest.mark.parametrize("provider", SHIPPED, ids=_ids(SHIPPED))
def test_every_entry_round_trips_through_the_schema(provider: Provider) -> None:
    assert Provider.model_validate(provider.model_dump()) == provider


@pytest.mark.parametrize("provider", SPECIFIC, ids=_ids(SPECIFIC))
def test_every_url_is_https(provider: Provider) -> None:
    for field, url in provider.urls().items():
        captured = PLACEHOLDER.match(url)
        if captured:  # a host captured from the provider's own response
            spec = provider.connection_config[captured.group(1)]
            assert spec.captured and spec.pattern.startswith("https://"), (field, url)
        else:
            assert url.startswith("https://"), (field, url)


@pytest.mark.parametrize("provider", SHIPPED, ids=_ids(SHIPPED))
def test_every_placeholder_names_a_declared_field(provider: Provider) -> None:
    for namespace, field in provider.placeholders():
        declared = getattr(provider, namespace)
        implicit = {"api_key", "username", "password"} | (
            {"access_token"} if provider.auth_mode == "OAUTH2" else set())
        assert field in declared or (namespace == "credentials" and field in implicit), (
            f"${{{namespace}.{field}}}")


@pytest.mark.parametrize(("provider", "field", "spec"), _config_fields())
def test_every_connection_config_field_has_a_pattern(provider: str, field: str,
                                                     spec: FieldSpec) -> None:
    assert spec.pattern, f"{provider}.connection_config.{field}"


@pytest.mark.parametrize(("provider", "field", "spec"), _config_fields())
def test_connection_config_patterns_refuse_hostile_values(provider: str, field: str,
                                                          spec: FieldSpec) -> None:
    for value in HOSTILE_VALUES:
        assert not spec.matches(value), f"{provider}.{field} accepts {value!r}"


@pytest.mark.parametrize(("provider", "field", "spec"), _all_field_specs())
def test_examples_and_defaults_satisfy_their_patterns(provider: str, field: str,
                                                      spec: FieldSpec) -> None:
    for value in (spec.example, spec.default):
        if value is not None:
            assert spec.matches(value), f"{provider}.{field}: {value!r}"


@pytest.mark.parametrize("provider", SPECIFIC, ids=_ids(SPECIFIC))
def test_oauth_entries_have_the_urls_their_mode_needs(provider: Provider) -> None:
    needed = {
        "OAUTH2": ["authorization_url", "token_url"],
        "OAUTH2_CC": ["token_url"],
        "OAUTH1": ["request_token_url", "authorization_url", "token_url", "signature_method"],
    }.get(provider.auth_mode, [])
    assert all(getattr(provider, field) for field in needed)


@pytest.mark.parametrize("provider", SHIPPED, ids=_ids(SHIPPED))
def test_no_secret_travels_in_a_url(provider: Provider) -> None:
    """Secrets belong in headers: URLs end up in traces and access logs."""
    for field, url in provider.urls().items():
        for match in re.finditer(r"\$\{credentials\.([A-Za-z0-9_]+)\}", url):
            name = match.group(1)
            spec = provider.credentials.get(name)
            assert spec is not None and not spec.secret, (field, name)
            assert name not in {"api_key", "password"}, (field, name)


def test_api_key_and_basic_entries_with_a_cheap_get_verify_credentials() -> None:
    without = [
        p.name for p in SPECIFIC if p.auth_mode in {"API_KEY", "BASIC"} and not p.verification
    ]
    assert without == []


def test_catalog_holds_enough_providers_of_each_kind() -> None:
    oauth = [p for p in SPECIFIC if p.auth_mode in OAUTH_MODES]
    keyed = [p for p in SPECIFIC if p.auth_mode in {"API_KEY", "BASIC"}]
    assert len(oauth) >= 60
    assert len(keyed) >= 15


@pytest.mark.parametrize("name", [
    "github", "gitlab", "bitbucket", "google", "google-calendar", "google-drive", "google-mail",
    "google-sheets", "microsoft", "microsoft-teams", "outlook", "onedrive", "sharepoint-online",
    "slack", "notion", "linear", "asana", "jira", "confluence", "salesforce", "hubspot",
    "pipedrive", "zendesk", "intercom", "shopify", "stripe-connect", "quickbooks", "xero",
    "dropbox", "box", "airtable", "figma", "zoom", "calendly", "discord", "spotify", "linkedin",
    "twitter-v2", "trello", "oauth2", "api-key", "basic", "openai", "anthropic", "stripe",
    "sendgrid", "mailgun", "twilio", "freshdesk", "airtable-pat", "pinecone", "resend",
    "postmark", "datadog", "pagerduty", "algolia", "brevo", "cal-com", "jira-api-token",
])
def test_well_known_provider_is_shipped(name: str) -> None:
    assert CATALOG.get(name) is not None


def test_generic_oauth2_entry_takes_its_urls_from_the_integration() -> None:
    generic = CATALOG.require("oauth2")
    assert generic.is_generic and generic.auth_mode == "OAUTH2"
    assert generic.authorization_url is None and generic.token_url is None


# --- Provider quirks the flows depend on -----------------------------------------------------


def test_google_asks_for_offline_access_and_fresh_consent() -> None:
    for name in ("google", "google-calendar", "google-drive", "google-mail", "google-sheets"):
        params = CATALOG.require(name).authorization_params
        assert params == {"access_type": "offline", "prompt": "consent"}, name


def test_notion_sends_owner_user_and_basic_auth_json_token_requests() -> None:
    notion = CATALOG.require("notion")
    assert notion.authorization_params["owner"] == "user"
    assert notion.token_request_auth == "client_secret_basic"
    assert notion.body_format == "json"


def test_atlassian_entries_target_the_api_gateway_with_forced_consent() -> None:
    for name in ("atlassian", "jira", "confluence"):
        provider = CATALOG.require(name)
        assert provider.authorization_params == {
            "audience": "api.atlassian.com", "prompt": "consent"}, name
        assert "offline_access" in provider.default_scopes, name


def test_salesforce_captures_its_instance_url_from_the_token_response() -> None:
    salesforce = CATALOG.require("salesforce")
    assert salesforce.capture_from_token_response == {"instance_url": "instance_url"}
    spec = salesforce.connection_config["instance_url"]
    assert spec.matches("https://acme.my.salesforce.com")
    assert not spec.matches("https://acme.my.salesforce.com.evil.com")


@pytest.mark.parametrize("name", ["jira", "confluence"])
def test_atlassian_products_capture_the_sites_cloud_id_for_their_api(name: str) -> None:
    provider = CATALOG.require(name)
    assert provider.capture_from_request is not None
    assert provider.capture_from_request.url == (
        "https://api.atlassian.com/oauth/token/accessible-resources")
    assert provider.capture_from_request.fields["cloud_id"] == "0.id"
    assert provider.connection_config["cloud_id"].matches("1324a887-45db-1bf4-1e99-ef0ff456d421")
    assert not provider.connection_config["cloud_id"].matches("../../admin")
    assert provider.base_url == f"https://api.atlassian.com/ex/{name}/${{connection_config.cloud_id}}"


def test_mailchimp_captures_its_data_centre_from_the_metadata_endpoint() -> None:
    mailchimp = CATALOG.require("mailchimp")
    assert mailchimp.capture_from_request is not None
    assert mailchimp.capture_from_request.headers == {
        "Authorization": "OAuth ${credentials.access_token}"}
    endpoint = mailchimp.connection_config["api_endpoint"]
    assert endpoint.matches("https://us19.api.mailchimp.com")
    assert not endpoint.matches("https://us19.api.mailchimp.com.evil.com")


def test_capture_request_is_for_oauth2_and_captured_fields_only() -> None:
    base = """
acme:
  display_name: Acme
  auth_mode: %s
  authorization_url: https://acme.com/authorize
  token_url: https://acme.com/token
  capture_from_request: {url: https://acme.com/me, fields: {account: id}}
"""
    with pytest.raises(CatalogError, match="captured value 'account'"):
        parse_catalog_text(base % "OAUTH2", source="extra.yaml")
    declared = base % "API_KEY" + "  connection_config: {account: {title: A, captured: true}}\n"
    with pytest.raises(CatalogError, match="needs an OAUTH2 access token"):
        parse_catalog_text(declared, source="extra.yaml")


def test_quickbooks_captures_the_realm_id_from_the_callback() -> None:
    quickbooks = CATALOG.require("quickbooks")
    assert quickbooks.capture_from_callback == {"realm_id": "realmId"}
    assert quickbooks.token_request_auth == "client_secret_basic"


def test_shopify_and_zendesk_urls_name_the_tenant_field() -> None:
    assert "${connection_config.shop}" in CATALOG.require("shopify").authorization_url
    assert "${connection_config.subdomain}" in CATALOG.require("zendesk").token_url


def test_twitter_v2_uses_pkce_and_basic_client_auth() -> None:
    twitter = CATALOG.require("twitter-v2")
    assert twitter.pkce and twitter.token_request_auth == "client_secret_basic"
    assert "offline.access" in twitter.default_scopes


def test_trello_is_oauth1_with_its_authorize_parameters() -> None:
    trello = CATALOG.require("trello")
    assert trello.auth_mode == "OAUTH1" and trello.signature_method == "HMAC-SHA1"
    assert trello.request_token_url == "https://trello.com/1/OAuthGetRequestToken"
    assert set(trello.authorization_params) == {"expiration", "name"}
    assert trello.scope_param == "scope" and trello.scope_separator == ","


def test_slack_user_tokens_are_read_from_authed_user() -> None:
    slack_user = CATALOG.require("slack-user")
    assert slack_user.scope_param == "user_scope"
    assert slack_user.token_response.access_token == "authed_user.access_token"


# --- Extra files -----------------------------------------------------------------------------


def test_extra_file_adds_and_overrides_entries(tmp_path: Path) -> None:
    extra = _write(tmp_path, "extra.yaml", """
acme:
  display_name: Acme
  auth_mode: OAUTH2
  authorization_url: http://127.0.0.1:9999/authorize
  token_url: http://127.0.0.1:9999/token
github:
  display_name: GitHub Enterprise
  auth_mode: OAUTH2
  authorization_url: https://git.example.com/login/oauth/authorize
  token_url: https://git.example.com/login/oauth/access_token
""")
    catalog = load_catalog(str(extra))
    assert catalog.require("acme").token_url == "http://127.0.0.1:9999/token"
    assert catalog.require("github").display_name == "GitHub Enterprise"
    assert len(catalog) == len(CATALOG) + 1


def test_later_extra_files_win(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.yaml", "acme: {display_name: First, auth_mode: API_KEY}\n")
    second = _write(tmp_path, "b.yaml", "acme: {display_name: Second, auth_mode: API_KEY}\n")
    assert load_catalog(f"{first}:{second}").require("acme").display_name == "Second"


def test_malformed_extra_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.yaml", "acme:\n  display_name: Acme\n  auth_mode: MAGIC\n")
    with pytest.raises(CatalogError, match=r"bad\.yaml: acme: auth_mode"):
        load_catalog(str(bad))


def test_unknown_field_in_an_extra_file_is_refused(tmp_path: Path) -> None:
    bad = _write(tmp_path, "typo.yaml",
                 "acme:\n  display_name: Acme\n  auth_mode: API_KEY\n  base_ulr: https://x\n")
    with pytest.raises(CatalogError, match=r"typo\.yaml: acme: base_ulr"):
        load_catalog(str(bad))


def test_extra_file_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    bad = _write(tmp_path, "broken.yaml", "acme: [unclosed\n")
    with pytest.raises(CatalogError, match=r"broken\.yaml: not valid YAML"):
        load_catalog(str(bad))


def test_missing_extra_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="provider file not found"):
        load_catalog(str(tmp_path / "absent.yaml"))


def test_placeholder_for_an_undeclared_field_is_refused() -> None:
    text = """
acme:
  display_name: Acme
  auth_mode: OAUTH2
  authorization_url: https://${connection_config.tenant}.acme.com/authorize
  token_url: https://acme.com/token
"""
    with pytest.raises(CatalogError, match=r"acme: uses \$\{connection_config\.tenant\}"):
        parse_catalog_text(text, source="extra.yaml")


def test_oauth2_entry_without_its_urls_is_refused() -> None:
    text = "acme: {display_name: Acme, auth_mode: OAUTH2, token_url: https://acme.com/t}\n"
    with pytest.raises(CatalogError, match="OAUTH2 needs authorization_url"):
        parse_catalog_text(text, source="extra.yaml")


def test_oauth1_entry_without_a_request_token_url_is_refused() -> None:
    text = """
acme:
  display_name: Acme
  auth_mode: OAUTH1
  authorization_url: https://acme.com/authorize
  token_url: https://acme.com/access
  signature_method: HMAC-SHA1
"""
    with pytest.raises(CatalogError, match="OAUTH1 needs request_token_url"):
        parse_catalog_text(text, source="extra.yaml")


def test_capture_into_an_undeclared_field_is_refused() -> None:
    text = """
acme:
  display_name: Acme
  auth_mode: OAUTH2
  authorization_url: https://acme.com/authorize
  token_url: https://acme.com/token
  capture_from_token_response: {host: host}
"""
    with pytest.raises(CatalogError, match="captured value 'host'"):
        parse_catalog_text(text, source="extra.yaml")


def test_unknown_provider_is_a_400() -> None:
    with pytest.raises(InvalidInputError) as caught:
        Catalog({}).require("nope")
    assert caught.value.code == "unknown_provider"


# --- Values: interpolation and field checks ------------------------------------------------


def test_interpolate_fills_connection_config_and_credentials() -> None:
    url = interpolate(
        "https://${connection_config.subdomain}.example.com/u/${credentials.username}",
        connection_config={"subdomain": "acme"}, credentials={"username": "AC1"},
    )
    assert url == "https://acme.example.com/u/AC1"


def test_interpolate_without_a_connection_config_value_is_a_400() -> None:
    with pytest.raises(InvalidInputError) as caught:
        interpolate(CATALOG.require("zendesk").token_url, connection_config={})
    assert caught.value.code == "missing_connection_config"
    assert caught.value.http_status == 400


def test_interpolate_without_a_credential_is_a_400() -> None:
    with pytest.raises(InvalidInputError) as caught:
        interpolate("https://x/${credentials.username}", connection_config={})
    assert caught.value.code == "missing_credentials"


def test_render_params_leaves_out_a_parameter_without_a_value() -> None:
    trello = CATALOG.require("trello")
    assert render_params(trello.authorization_params, connection_config={}) == {
        "expiration": "never"}
    named = render_params(trello.authorization_params, connection_config={"app_name": "Acme"})
    assert named == {"expiration": "never", "name": "Acme"}


def test_zendesk_subdomain_refuses_a_path() -> None:
    with pytest.raises(InvalidInputError) as caught:
        CATALOG.require("zendesk").check_connection_config({"subdomain": "evil.com/x"})
    assert caught.value.code == "invalid_connection_config"


def test_connection_config_accepts_a_valid_value() -> None:
    config = CATALOG.require("shopify").check_connection_config({"shop": "acme-store"})
    assert config == {"shop": "acme-store"}


def test_missing_connection_config_value_is_reported() -> None:
    with pytest.raises(InvalidInputError) as caught:
        CATALOG.require("shopify").check_connection_config({})
    assert caught.value.code == "missing_connection_config"


def test_undeclared_connection_config_value_is_refused() -> None:
    with pytest.raises(InvalidInputError) as caught:
        CATALOG.require("shopify").check_connection_config({"shop": "acme", "host": "evil"})
    assert caught.value.code == "invalid_connection_config"


def test_connection_config_defaults_fill_empty_values() -> None:
    assert CATALOG.require("datadog").check_connection_config({}) == {"site": "datadoghq.com"}


def test_captured_fields_are_not_asked_for() -> None:
    assert CATALOG.require("salesforce").check_connection_config({}) == {}


def test_credential_defaults_fill_the_fixed_basic_password() -> None:
    creds = CATALOG.require("freshdesk").check_credentials({"username": "abc123"})
    assert creds == {"username": "abc123", "password": "X"}


def test_credential_with_the_wrong_shape_is_refused() -> None:
    with pytest.raises(InvalidInputError) as caught:
        CATALOG.require("stripe").check_credentials({"api_key": "pk_live_123"})
    assert caught.value.code == "invalid_credentials"


def test_missing_credential_is_reported() -> None:
    with pytest.raises(InvalidInputError) as caught:
        CATALOG.require("openai").check_credentials({})
    assert caught.value.code == "missing_credentials"


def test_public_view_leaves_out_empty_fields() -> None:
    public = CATALOG.require("github").to_public_dict()
    assert public["token_url"] == "https://github.com/login/oauth/access_token"
    assert "revocation_url" not in public
