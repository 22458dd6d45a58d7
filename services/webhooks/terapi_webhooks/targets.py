"""Which webhook URLs may be called: http(s) only, and no private addresses unless allowed."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp import ClientSession, TCPConnector
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from terapi_webhooks.domain import is_public_address


class PrivateTargetError(OSError):
    """A webhook host resolved to an address webhooks may not reach."""


class PublicOnlyResolver(AbstractResolver):
    """Resolves as usual, then refuses hosts with any non-public address.

    Checking the addresses the connection will actually use (not a lookup made
    beforehand) leaves no window for DNS rebinding.
    """

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        hosts = await self._inner.resolve(host, port, family)
        if any(not is_public_address(h["host"]) for h in hosts):
            raise PrivateTargetError(f"{host} resolves to a private address")
        return hosts

    async def close(self) -> None:
        await self._inner.close()


def public_only_session() -> ClientSession:
    """A client session that can only connect to public addresses."""
    return ClientSession(connector=TCPConnector(resolver=PublicOnlyResolver()))


def refusal(url: str, *, allow_private: bool) -> str | None:
    """Why `url` may never be called, or None; IP literals skip the resolver, so check here."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "webhook URL is malformed"
    if parts.scheme not in ("http", "https") or not host:
        return "webhook URL must be an http(s) URL with a host"
    if allow_private or not _is_ip_literal(host):
        return None
    return None if is_public_address(host) else f"{host} is a private address"


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True
