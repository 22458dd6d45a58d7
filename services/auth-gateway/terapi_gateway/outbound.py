"""Requests from the gateway to providers: bounded in time and size, never redirected."""

from __future__ import annotations

import asyncio
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
                raw = await response.content.read(MAX_ANSWER_BYTES + 1)
                if len(raw) > MAX_ANSWER_BYTES:
                    raise ProviderUnreachableError("the provider's answer is too large")
                return ProviderAnswer(
                    status=response.status,
                    content_type=response.headers.get("Content-Type", "").lower(),
                    text=raw.decode(response.charset or "utf-8", errors="replace"),
                )
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise ProviderUnreachableError(type(exc).__name__) from None
