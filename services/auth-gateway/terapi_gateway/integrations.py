"""Integrations as the gateway sees them: the vault's facts, the catalog entry, the client."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from terapi_common.crypto import DecryptionError, integration_aad
from terapi_common.errors import TerapiError
from terapi_common.events import (
    AuthMode,
    GetIntegration,
    IntegrationInfo,
    IntegrationList,
    ListIntegrations,
)
from terapi_common.oauth2 import resolve_provider
from terapi_common.providers import FieldSpec, Provider
from terapi_gateway.domain import Caller, check_integration_allowed
from terapi_gateway.errors import InvalidAuthModeError
from terapi_gateway.providers.oauth2 import OAuthClient, client_from_config

if TYPE_CHECKING:
    from terapi_gateway.handlers import Gateway

# Credentials every API_KEY / BASIC entry takes, even one that declares none.
IMPLICIT_CREDENTIALS: dict[str, dict[str, FieldSpec]] = {
    "API_KEY": {"api_key": FieldSpec(title="API key", secret=True)},
    "BASIC": {
        "username": FieldSpec(title="Username"),
        "password": FieldSpec(title="Password", secret=True, optional=True),
    },
}


@dataclass(frozen=True)
class Integration:
    """An integration ready for a flow: the vault's facts, its provider and its client.

    `provider` is the catalog entry as this integration uses it (generic settings applied).
    """

    info: IntegrationInfo
    provider: Provider
    client: OAuthClient | None

    @property
    def display_name(self) -> str:
        return self.info.display_name or self.provider.display_name


async def load_integration(
    gateway: Gateway, environment_id: int, integration_id: str, *, modes: Iterable[AuthMode]
) -> Integration:
    """The integration, if it exists and runs one of `modes`; its client unsealed."""
    info = await integration_info(gateway, environment_id, integration_id)
    allowed = tuple(modes)
    if info.auth_mode not in allowed:
        raise InvalidAuthModeError(
            f"integration {integration_id!r} uses {info.auth_mode}, not {' or '.join(allowed)}"
        )
    client = _unseal_client(gateway, environment_id, info)
    return Integration(info, _configured(gateway.catalog.require(info.provider), client), client)


def _configured(provider: Provider, client: OAuthClient | None) -> Provider:
    """The generic entry with the integration's URLs, PKCE and scope separator applied."""
    if client is None or not provider.is_generic:
        return provider  # catalog entries keep their own URLs whatever provider_config says
    return resolve_provider(provider, client.provider_config)


async def integration_info(gateway: Gateway, environment_id: int, integration_id: str
                           ) -> IntegrationInfo:
    """The vault's facts about an integration, cached briefly (the vault announces changes)."""
    key = (environment_id, integration_id)
    cached = gateway.integrations.get(key)
    if cached is not None:
        return cached
    info = await gateway.bus.request(
        GetIntegration(environment_id=environment_id, integration_id=integration_id)
    )
    assert isinstance(info, IntegrationInfo)
    gateway.integrations.put(key, info)
    return info


def _unseal_client(gateway: Gateway, environment_id: int, info: IntegrationInfo
                   ) -> OAuthClient | None:
    if info.sealed_config is None:
        return None
    aad = integration_aad(environment_id, info.integration_id)
    try:
        return client_from_config(gateway.key_ring.unseal(info.sealed_config, aad=aad))
    except (DecryptionError, ValueError):
        raise TerapiError("the integration's settings could not be read") from None


async def list_integrations(
    gateway: Gateway, environment_id: int, integration_ids: Iterable[str] | None
) -> list[IntegrationInfo]:
    """The environment's integrations, only the named ones when a list is given."""
    listed = await gateway.bus.request(
        ListIntegrations(
            environment_id=environment_id,
            integration_ids=list(integration_ids) if integration_ids is not None else None,
        )
    )
    assert isinstance(listed, IntegrationList)
    return listed.integrations


def public_view(info: IntegrationInfo, provider: Provider) -> dict[str, Any]:
    """What the SDK and the connect page need to render a flow; nothing secret."""
    credentials = provider.credentials or IMPLICIT_CREDENTIALS.get(info.auth_mode, {})
    return {
        "integration_id": info.integration_id,
        "provider": info.provider,
        "auth_mode": info.auth_mode,
        "display_name": info.display_name or provider.display_name,
        "connection_config": {
            name: _field_view(spec) for name, spec in provider.connection_config.items()
            if not spec.captured
        },
        "credentials": {name: _field_view(spec) for name, spec in credentials.items()},
    }


def _field_view(spec: FieldSpec) -> dict[str, Any]:
    return {
        "title": spec.title,
        "description": spec.description,
        "pattern": spec.pattern,
        "example": spec.example,
        "optional": spec.optional or spec.default is not None,
        "secret": spec.secret,
    }


async def describe(gateway: Gateway, caller: Caller, integration_id: str) -> dict[str, Any]:
    """One integration as the SDK sees it, if the caller may open it."""
    check_integration_allowed(caller, integration_id)
    info = await integration_info(gateway, caller.environment_id, integration_id)
    return public_view(info, gateway.catalog.require(info.provider))


async def describe_all(gateway: Gateway, caller: Caller) -> list[dict[str, Any]]:
    """The integrations a connect session may open (all of the environment's if it names none;
    the vault lists only those the session allows)."""
    listed = await list_integrations(gateway, caller.environment_id, caller.allowed_integrations)
    views = []
    for info in listed:
        provider = gateway.catalog.get(info.provider)
        if provider is not None:
            views.append(public_view(info, provider))
    return views
