"""A provider catalog for the gateway's tests, every entry pointing at the local provider."""

from __future__ import annotations


def test_catalog(base: str) -> str:
    """YAML for `providers_path`; `base` is the mock provider's root URL."""
    return f"""
mock-oauth2:
  display_name: Mock OAuth 2
  auth_mode: OAUTH2
  authorization_url: {base}/oauth/authorize
  token_url: {base}/oauth/token
  default_scopes: [read, write]

mock-pkce:
  display_name: Mock OAuth 2 with PKCE
  auth_mode: OAUTH2
  authorization_url: {base}/oauth/authorize
  token_url: {base}/oauth/token
  token_request_auth: client_secret_basic
  default_scopes: [read]
  pkce: true

mock-tenant:
  display_name: Mock tenant OAuth 2
  auth_mode: OAUTH2
  authorization_url: {base}/t/${{connection_config.subdomain}}/oauth/authorize
  token_url: {base}/t/${{connection_config.subdomain}}/oauth/token
  scope_separator: ','
  authorization_params: {{prompt: consent, audience: 'api-${{connection_config.subdomain}}'}}
  capture_from_token_response: {{instance_url: instance_url}}
  capture_from_callback: {{realm_id: realmId}}
  connection_config:
    subdomain:
      title: Subdomain
      description: The part before .example.com
      pattern: '[a-z0-9][a-z0-9-]{{0,62}}'
      example: acme
    region: {{title: Region, optional: true, pattern: '[a-z]{{2}}'}}
    instance_url:
      title: Instance URL
      pattern: 'https://[a-z0-9]+\\.example\\.com'
      captured: true
    realm_id: {{title: Company ID, pattern: '[0-9]{{1,32}}', captured: true}}

mock-sites:
  display_name: Mock OAuth 2 whose API names the site the user picked
  auth_mode: OAUTH2
  authorization_url: {base}/oauth/authorize
  token_url: {base}/oauth/token
  capture_from_request:
    url: {base}/api/accessible-resources
    fields: {{cloud_id: 0.id, site_url: 0.url}}
  connection_config:
    cloud_id: {{title: Cloud id, pattern: '[0-9a-f-]{{36}}', captured: true}}
    site_url: {{title: Site URL, pattern: 'https://[a-z0-9]+\\.example\\.com', captured: true}}

mock-oauth1:
  display_name: Mock OAuth 1.0a
  auth_mode: OAUTH1
  request_token_url: {base}/oauth1/request_token
  authorization_url: {base}/oauth1/authorize
  token_url: {base}/oauth1/access_token
  signature_method: HMAC-SHA1
  default_scopes: [read]
  scope_separator: ','
  authorization_params: {{expiration: never, name: Terapi tests}}

mock-cc:
  display_name: Mock client credentials
  auth_mode: OAUTH2_CC
  token_url: {base}/oauth/token
  default_scopes: [jobs]

mock-key:
  display_name: Mock API with key verification
  auth_mode: API_KEY
  credentials:
    api_key: {{title: API key, secret: true, pattern: '[a-z]+-[A-Za-z0-9]+', example: good-123}}
  connection_config:
    site: {{title: Site, pattern: '[a-z]+', default: main}}
  verification:
    url: {base}/api/key-check?site=${{connection_config.site}}
    headers:
      Authorization: Bearer ${{credentials.api_key}}

mock-key-any:
  display_name: Mock API whose keys have no known shape
  auth_mode: API_KEY
  verification:
    url: {base}/api/key-check?site=main
    headers:
      Authorization: Bearer ${{credentials.api_key}}

mock-basic:
  display_name: Mock API with Basic verification
  auth_mode: BASIC
  verification:
    url: {base}/api/basic-check

mock-unreachable:
  display_name: Mock API that is down
  auth_mode: API_KEY
  verification:
    url: http://127.0.0.1:9/api/check
"""
