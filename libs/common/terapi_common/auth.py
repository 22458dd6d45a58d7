"""Who is calling: environment keys resolved through the vault, cached briefly.

Only the vault stores keys. Other services send it the SHA-256 digest of a secret key
(never the key) or a public key, and keep the answer for a short time so a hot path
does not pay a round trip per request.
"""

from __future__ import annotations

from aiohttp import web

from terapi_common.bus import Bus
from terapi_common.cache import TtlCache
from terapi_common.crypto import sha256_hex
from terapi_common.errors import UnauthorizedError
from terapi_common.events import (
    AuthenticateSecretKey,
    EnvironmentIdentity,
    ResolvePublicKey,
)
from terapi_common.http import bearer_token

# Short: the identity carries settings (require_connect_sessions) that must take effect
# after a PATCH /environment even if its announcement is missed (`forget_environment`
# applies it at once otherwise), and a miss costs only one request to the vault.
CACHE_SECONDS = 5.0
_MAX_ENTRIES = 10_000


class KeyAuthenticator:
    """Maps secret and public keys to environments, with a small TTL cache."""

    def __init__(self, bus: Bus, *, ttl: float = CACHE_SECONDS) -> None:
        self._bus = bus
        self._cache: TtlCache[EnvironmentIdentity] = TtlCache(ttl=ttl, max_entries=_MAX_ENTRIES)

    async def by_secret_key(self, secret_key: str) -> EnvironmentIdentity:
        digest = sha256_hex(secret_key)
        return await self._cached(f"s:{digest}", AuthenticateSecretKey(key_digest=digest))

    async def by_public_key(self, public_key: str) -> EnvironmentIdentity:
        if not public_key or len(public_key) > 200:
            raise UnauthorizedError("public_key is not valid", code="invalid_public_key")
        return await self._cached(f"p:{public_key}", ResolvePublicKey(public_key=public_key))

    async def for_request(self, request: web.Request) -> EnvironmentIdentity:
        """The environment of the request's `Authorization: Bearer <secret_key>`."""
        return await self.by_secret_key(bearer_token(request))

    def forget_environment(self, environment_id: int) -> None:
        """The vault announced a change of the environment's settings."""
        self._cache.forget_where(lambda identity: identity.environment_id == environment_id)

    async def _cached(
        self, key: str, command: AuthenticateSecretKey | ResolvePublicKey
    ) -> EnvironmentIdentity:
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        asked_at = self._cache.epoch
        identity = await self._bus.request(command)
        assert isinstance(identity, EnvironmentIdentity)
        self._cache.put(key, identity, read_at=asked_at)
        return identity
