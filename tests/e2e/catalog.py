"""Catalog entries for the mock provider, as an operator would add them."""

from __future__ import annotations


def mock_catalog(base: str) -> str:
    """YAML for `TERAPI_PROVIDERS_PATH`, pointing every entry at the mock provider."""
    return f"""
mock-oauth2:
  display_name: Mock OAuth 2 (PKCE)
  auth_mode: OAUTH2
  authorization_url: {base}/oauth/authorize
  token_url: {base}/oauth/token
  revocation_url: {base}/oauth/revoke
  default_scopes: [read]
  pkce: true

mock-oauth2-basic-auth:
  display_name: Mock OAuth 2 (no PKCE, client_secret_basic)
  auth_mode: OAUTH2
  authorization_url: {base}/oauth/authorize
  token_url: {base}/oauth/token
  token_request_auth: client_secret_basic
  pkce: false

mock-tenant:
  display_name: Mock tenant-scoped OAuth 2 (like Zendesk)
  auth_mode: OAUTH2
  authorization_url: {base}/t/${{connection_config.subdomain}}/oauth/authorize
  token_url: {base}/t/${{connection_config.subdomain}}/oauth/token
  connection_config:
    subdomain:
      title: Subdomain
      pattern: "^[a-z0-9][a-z0-9-]{{0,62}}$"
      example: acme

mock-oauth1:
  display_name: Mock OAuth 1.0a (like Trello)
  auth_mode: OAUTH1
  request_token_url: {base}/oauth1/request_token
  authorization_url: {base}/oauth1/authorize
  token_url: {base}/oauth1/access_token
  signature_method: HMAC-SHA1

mock-cc:
  display_name: Mock client credentials
  auth_mode: OAUTH2_CC
  token_url: {base}/oauth/token

mock-verified-key:
  display_name: Mock API with key verification
  auth_mode: API_KEY
  credentials:
    api_key: {{title: API key, secret: true}}
  verification:
    url: {base}/api/key-check
    headers:
      Authorization: Bearer ${{credentials.api_key}}
"""
