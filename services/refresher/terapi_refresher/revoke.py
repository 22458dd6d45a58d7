"""Revoking a deleted connection's tokens at the provider (RFC 7009)."""

from __future__ import annotations

from terapi_common.crypto import connection_aad
from terapi_common.errors import ProviderError
from terapi_common.events import RevocationResult, RevokeCredentials
from terapi_common.oauth2 import build_token_request, resolve_provider
from terapi_common.providers import interpolate
from terapi_refresher import provider_http
from terapi_refresher.refresh import Tools, client_for, integration_config


async def on_revoke_credentials(command: RevokeCredentials, *, tools: Tools) -> RevocationResult:
    """Revoke the refresh token (which ends the grant) or else the access token."""
    provider = tools.catalog.get(command.provider)
    if provider is None:
        return RevocationResult(revoked=False, detail="unknown provider")
    config = integration_config(tools.key_ring, command.sealed_config, command.environment_id,
                                command.integration_id)
    provider = resolve_provider(provider, config.get("provider_config"))
    if not provider.revocation_url:
        return RevocationResult(revoked=False, detail="the provider has no revocation endpoint")
    credentials = tools.key_ring.unseal(command.sealed_credentials, aad=connection_aad(
        command.environment_id, command.integration_id, command.connection_id))
    hint, token = _token_to_revoke(credentials)
    if token is None:
        return RevocationResult(revoked=False, detail="no token to revoke")
    client = client_for(credentials, config)
    request = build_token_request(
        provider, url=interpolate(provider.revocation_url,
                                  connection_config=command.connection_config),
        client=client, grant={"token": token, "token_type_hint": hint},
    )
    try:
        status, _type, _text = await provider_http.post(tools.http, request)
    except ProviderError as exc:
        return RevocationResult(revoked=False, detail=exc.message)
    # RFC 7009 §2.2: 200 means revoked, and also "the token was already invalid".
    return RevocationResult(revoked=status == 200, detail=f"HTTP {status}")


def _token_to_revoke(credentials: dict[str, object]) -> tuple[str, str | None]:
    refresh_token = credentials.get("refresh_token")
    if isinstance(refresh_token, str) and refresh_token:
        return "refresh_token", refresh_token
    access_token = credentials.get("access_token")
    return "access_token", access_token if isinstance(access_token, str) else None
