"""Refreshing one connection's credentials: read from the vault, renew, write back."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from terapi_common.bus import Bus
from terapi_common.clock import Clock
from terapi_common.crypto import KeyRing, connection_aad, integration_aad
from terapi_common.errors import ProviderError, ServiceUnavailableError
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
from terapi_refresher.store import DueRefresh, PendingWrite

# A vault restart or a lost reply should not cost a round: the provider has already
# rotated the refresh token, so the write-back is worth a few quick tries.
WRITE_BACK_TRIES = 3


@dataclass(frozen=True)
class Tools:
    """What a refresh needs to reach the vault and the provider."""

    bus: Bus
    key_ring: KeyRing
    catalog: Catalog
    http: aiohttp.ClientSession
    clock: Clock
    # Seconds before the first retry of a write-back the vault did not answer; doubles.
    write_back_pause: float = 0.5


async def read_connection(item: DueRefresh, tools: Tools) -> SealedConnection:
    """The connection's sealed credentials and facts, as the vault has them now."""
    sealed = await tools.bus.request(GetConnectionCredentials(
        environment_id=item.environment_id, integration_id=item.integration_id,
        connection_id=item.connection_id))
    assert isinstance(sealed, SealedConnection)
    return sealed


async def renew(item: DueRefresh, sealed: SealedConnection, tools: Tools) -> PendingWrite:
    """Ask the provider for new credentials; raises ProviderError when it refuses."""
    aad = connection_aad(item.environment_id, item.integration_id, item.connection_id)
    credentials = tools.key_ring.unseal(sealed.sealed_credentials, aad=aad)
    config = integration_config(tools.key_ring, sealed.sealed_config, item.environment_id,
                                item.integration_id)
    provider = resolve_provider(tools.catalog.require(sealed.provider),
                                config.get("provider_config"))
    grant = domain.refresh_grant(credentials)
    if grant is None:
        raise ProviderError("these credentials cannot be refreshed (no refresh token)",
                            code="not_refreshable", provider_error="no_refresh_token")
    renewed = await _renew(provider, credentials, config, grant, sealed, tools)
    return PendingWrite(sealed_credentials=tools.key_ring.seal(renewed, aad=aad),
                        replaces_version=sealed.version, expires_at=credentials_expiry(renewed))


async def write_back(item: DueRefresh, pending: PendingWrite, tools: Tools, *,
                     operation_id: str) -> bool:
    """Hand renewed credentials to the vault; False when it refused them (changed since)."""
    command = StoreRefreshedCredentials(
        environment_id=item.environment_id, integration_id=item.integration_id,
        connection_id=item.connection_id, expected_version=pending.replaces_version,
        sealed_credentials=pending.sealed_credentials, expires_at=pending.expires_at,
        operation_id=operation_id,
    )
    for retry in range(WRITE_BACK_TRIES - 1):
        try:
            return await _store(command, tools)
        except ServiceUnavailableError:
            await asyncio.sleep(tools.write_back_pause * 2 ** retry)
    return await _store(command, tools)


async def _store(command: StoreRefreshedCredentials, tools: Tools) -> bool:
    reply = await tools.bus.request(command)
    assert isinstance(reply, CredentialsRefreshed)
    return reply.stored


def integration_config(key_ring: KeyRing, sealed_config: str | None, environment_id: int,
                       integration_id: str) -> dict[str, Any]:
    """The integration's OAuth client and provider settings, as the vault sealed them."""
    if sealed_config is None:
        return {}
    return key_ring.unseal(sealed_config, aad=integration_aad(environment_id, integration_id))


def client_for(credentials: Mapping[str, Any], config: Mapping[str, Any]) -> ClientCredentials:
    """The connection's own client (client credentials connections) or else the integration's."""
    return ClientCredentials(
        client_id=credentials.get("client_id") or config.get("client_id") or "",
        client_secret=credentials.get("client_secret") or config.get("client_secret"),
    )


async def _renew(provider: Provider, credentials: dict[str, Any], config: dict[str, Any],
                 grant: dict[str, str], sealed: SealedConnection, tools: Tools
                 ) -> dict[str, Any]:
    client = client_for(credentials, config)
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
