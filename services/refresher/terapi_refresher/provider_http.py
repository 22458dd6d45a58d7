"""Sending token and revocation requests to providers, with a timeout on every call."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from terapi_common.errors import ProviderError
from terapi_common.oauth2 import TokenRequest, read_token_answer

TIMEOUT_SECONDS = 15.0


async def post(http: aiohttp.ClientSession, request: TokenRequest) -> tuple[int, str, str]:
    """POST the request; returns the status, content type and body text."""
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS), http.post(
            request.url, headers=request.headers, data=request.form, json=request.json,
            params=request.params or None,
        ) as response:
            return (response.status, response.headers.get("Content-Type", ""),
                    await response.text())
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ProviderError(
            f"the provider could not be reached: {type(exc).__name__}", code="provider_unreachable"
        ) from None


async def request_token(http: aiohttp.ClientSession, request: TokenRequest) -> dict[str, Any]:
    """The token answer, or the ProviderError the provider's refusal amounts to."""
    return read_token_answer(*await post(http, request))
