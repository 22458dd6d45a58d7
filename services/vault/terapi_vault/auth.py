"""Secret keys to environments, resolved against the vault's own table and cached briefly."""

from __future__ import annotations

from aiohttp import web

from terapi_common.cache import TtlCache
from terapi_common.crypto import sha256_hex
from terapi_common.errors import UnauthorizedError
from terapi_common.http import bearer_token
from terapi_vault.domain import Environment
from terapi_vault.store import Store

CACHE_SECONDS = 5.0
_MAX_ENTRIES = 10_000


class EnvironmentKeys:
    """Finds the environment of a secret key by its SHA-256 digest, with a short TTL cache."""

    def __init__(self, store: Store, *, ttl: float = CACHE_SECONDS) -> None:
        self._store = store
        self._cache: TtlCache[Environment] = TtlCache(ttl=ttl, max_entries=_MAX_ENTRIES)

    async def for_request(self, request: web.Request) -> Environment:
        """The environment of `Authorization: Bearer <secret_key>`, or a 401."""
        return await self.by_digest(sha256_hex(bearer_token(request)))

    async def by_digest(self, digest: str) -> Environment:
        hit = self._cache.get(digest)
        if hit is not None:
            return hit
        environment = await self._store.environment_by_digest(digest)
        if environment is None:
            raise UnauthorizedError("the secret key is not valid", code="invalid_secret_key")
        self._cache.put(digest, environment)
        return environment

    def forget(self) -> None:
        """Drop cached environments, after their settings changed."""
        self._cache.clear()
