"""Requests to providers: whole answers however they arrive, any declared charset."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from terapi_gateway.outbound import MAX_ANSWER_BYTES, ProviderUnreachableError, send
from terapi_gateway.providers.oauth2 import ProviderRequest

pytestmark = pytest.mark.integration
TOKEN_JSON = b'{"access_token": "' + b"a" * 4000 + b'", "token_type": "Bearer"}'


async def in_pieces(request: web.Request) -> web.StreamResponse:
    """A token answer written in several flushed pieces, as slow providers send it."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    for start in range(0, len(TOKEN_JSON), 1000):
        await response.write(TOKEN_JSON[start:start + 1000])
        await asyncio.sleep(0.005)
    await response.write_eof()
    return response


async def odd_charset(request: web.Request) -> web.Response:
    return web.Response(body='{"name": "café"}'.encode(),
                        headers={"Content-Type": "application/json; charset=x-unknown-9"})


async def too_large(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    for _ in range(MAX_ANSWER_BYTES // 65536 + 2):
        await response.write(b"x" * 65536)
    await response.write_eof()
    return response


@pytest.fixture
async def base_url(aiohttp_server) -> str:
    app = web.Application()
    app.router.add_get("/pieces", in_pieces)
    app.router.add_get("/charset", odd_charset)
    app.router.add_get("/large", too_large)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


async def test_an_answer_written_in_pieces_is_read_whole(base_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        answer = await send(http, ProviderRequest("GET", f"{base_url}/pieces", {}))
    assert answer.text.encode() == TOKEN_JSON


async def test_an_unknown_charset_is_read_as_utf8(base_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        answer = await send(http, ProviderRequest("GET", f"{base_url}/charset", {}))
    assert answer.text == '{"name": "café"}'


async def test_an_answer_over_the_cap_is_refused(base_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderUnreachableError, match="too large"):
            await send(http, ProviderRequest("GET", f"{base_url}/large", {}))
