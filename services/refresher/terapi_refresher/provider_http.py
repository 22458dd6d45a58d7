"""Sending token and revocation requests to providers, with a timeout on every call."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from terapi_common.errors import ProviderError
from terapi_common.oauth2 import TokenRequest, parse_token_body

TIMEOUT_SECONDS = 15.0


async def send(http: aiohttp.ClientSession, request: TokenRequest) -> tuple[int, dict[str, Any]]:
    """POST the request; returns the status and the parsed body ({} when empty)."""
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS), http.post(
            request.url, headers=request.headers, data=request.form, json=request.json,
            params=request.params or None,
        ) as response:
            text = await response.text()
            content_type = response.headers.get("Content-Type", "")
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ProviderError(
            f"the provider could not be reached: {type(exc).__name__}", code="provider_unreachable"
        ) from None
    if not text.strip():
        return status, {}
    try:
        return status, parse_token_body(text, content_type)
    except ProviderError:
        if status >= 300:
            return status, {}
        raise
