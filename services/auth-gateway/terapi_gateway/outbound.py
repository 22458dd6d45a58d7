"""Requests from the gateway to providers: bounded in time and size, never redirected."""

from __future__ import annotations

import asyncio
import codecs
from dataclasses import dataclass

import aiohttp

from terapi_gateway.providers.oauth2 import ProviderRequest

PROVIDER_TIMEOUT_SECONDS = 15.0
MAX_ANSWER_BYTES = 1024 * 1024


class ProviderUnreachableError(Exception):
    """The provider did not answer: a network error, a timeout or an oversized answer."""


@dataclass(frozen=True)
class ProviderAnswer:
    status: int
    content_type: str
    text: str


async def send(
    http: aiohttp.ClientSession,
    request: ProviderRequest,
    *,
    timeout: float = PROVIDER_TIMEOUT_SECONDS,
) -> ProviderAnswer:
    """Send `request`; the answer's status and text, whatever the status."""
    try:
        async with asyncio.timeout(timeout):
            # No redirects: credentials must never follow a Location to another host.
            async with http.request(
                request.method, request.url, headers=request.headers, data=request.body,
                allow_redirects=False,
            ) as response:
                raw = await _read_capped(response.content, MAX_ANSWER_BYTES)
                return ProviderAnswer(
                    status=response.status,
                    content_type=response.headers.get("Content-Type", "").lower(),
                    text=raw.decode(_known_charset(response.charset), errors="replace"),
                )
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise ProviderUnreachableError(type(exc).__name__) from None


async def _read_capped(content: aiohttp.StreamReader, limit: int) -> bytes:
    """The whole body, up to `limit` bytes; one `read(n)` returns only what has arrived."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise ProviderUnreachableError("the provider's answer is too large")
    return b"".join(chunks)


def _known_charset(charset: str | None) -> str:
    # A provider may name a charset Python does not know; its JSON is utf-8 in practice.
    if charset:
        try:
            return codecs.lookup(charset).name
        except LookupError:
            pass
    return "utf-8"
