"""Refreshing one connection's credentials: read from the vault, renew, write back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from terapi_common.bus import Bus
from terapi_common.clock import Clock
from terapi_common.crypto import KeyRing, connection_aad
from terapi_common.errors import ProviderError
from terapi_common.events import (
    CredentialsRefreshed,
    GetConnectionCredentials,
    SealedConnection,
    StoreRefreshedCredentials,
)
from terapi_common.oauth2 import (
    ClientCredentials,
    build_token_request,
    credentials_expiry,
    normalize_token_response,
    resolve_provider,
)
from terapi_common.providers import Catalog, Provider, interpolate, render_params
from terapi_refresher import domain, provider_http
from terapi_refresher.store import DueRefresh


@dataclass(frozen=True)
class Refreshed:
    """What a successful refresh produced."""

    connection: SealedConnection
    expires_at: datetime | None
    stored: bool


@dataclass(frozen=True)
class Tools:
    """What a refresh needs to reach the vault and the provider."""

    bus: Bus
    key_ring: KeyRing
    catalog: Catalog
    http: aiohttp.ClientSession
    clock: Clock


def integration_aad(environment_id: int, integration_id: str) -> str:
    return f"integration:{environment_id}:{integration_id}"


async def refresh(item: DueRefresh, tools: Tools, *, operation_id: str) -> Refreshed:
    """Renew the credentials of `item`; raises ProviderError when the provider refuses."""
    sealed = await tools.bus.request(GetConnectionCredentials(
        environment_id=item.environment_id, integration_id=item.integration_id,
        connection_id=item.connection_id))
    assert isinstance(sealed, SealedConnection)
    credentials = tools.key_ring.unseal(sealed.sealed_credentials, aad=connection_aad(
        item.environment_id, item.integration_id, item.connection_id))
    config = _integration_config(sealed, tools.key_ring, item)
    provider = resolve_provider(tools.catalog.require(sealed.provider),
                                config.get("provider_config"))
    grant = domain.refresh_grant(credentials)
    if grant is None:
        raise ProviderError("these credentials cannot be refreshed (no refresh token)",
                            code="not_refreshable", provider_error="no_refresh_token")
    renewed = await _renew(provider, credentials, config, grant, sealed, tools)
    reply = await tools.bus.request(StoreRefreshedCredentials(
        environment_id=item.environment_id, integration_id=item.integration_id,
        connection_id=item.connection_id, expected_version=sealed.version,
        sealed_credentials=tools.key_ring.seal(renewed, aad=connection_aad(
            item.environment_id, item.integration_id, item.connection_id)),
        expires_at=credentials_expiry(renewed), operation_id=operation_id,
    ))
    assert isinstance(reply, CredentialsRefreshed)
    return Refreshed(sealed, credentials_expiry(renewed), reply.stored)


def _integration_config(sealed: SealedConnection, key_ring: KeyRing, item: DueRefresh
                        ) -> dict[str, Any]:
    if sealed.sealed_config is None:
        return {}
    return key_ring.unseal(sealed.sealed_config,
                           aad=integration_aad(item.environment_id, item.integration_id))


async def _renew(provider: Provider, credentials: dict[str, Any], config: dict[str, Any],
                 grant: dict[str, str], sealed: SealedConnection, tools: Tools
                 ) -> dict[str, Any]:
    client = ClientCredentials(
        client_id=credentials.get("client_id") or config.get("client_id") or "",
        client_secret=credentials.get("client_secret") or config.get("client_secret"),
    )
    url = interpolate(provider.refresh_url or provider.token_url or "",
                      connection_config=sealed.connection_config)
    params = provider.refresh_params if grant["grant_type"] == "refresh_token" else (
        provider.token_params)
    extra = render_params(params, connection_config=sealed.connection_config)
    if grant["grant_type"] == "client_credentials" and credentials.get("requested_scopes"):
        extra = {**extra, "scope": provider.scope_separator.join(credentials["requested_scopes"])}
    request = build_token_request(provider, url=url, client=client, grant=grant, extra=extra)
    body = await provider_http.request_token(tools.http, request)
    renewed = normalize_token_response(
        provider, body, now=tools.clock.now(),
        requested_scopes=list(credentials.get("requested_scopes") or credentials.get("scopes")
                              or []),
        previous_refresh_token=credentials.get("refresh_token"),
        credential_type=str(credentials.get("type", "OAUTH2")),
    )
    for kept in ("client_id", "client_secret"):  # per-connection client credentials stay
        if credentials.get(kept):
            renewed[kept] = credentials[kept]
    return renewed
