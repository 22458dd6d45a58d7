"""The JSON edge every service shares: bodies in pieces, unstorable values, no leaked paths."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import structlog
import structlog.testing
from aiohttp import web
from pydantic import BaseModel, ConfigDict

from terapi_common.http import error_middleware, read_json


class Anything(BaseModel):
    model_config = ConfigDict(extra="allow")


async def echo(request: web.Request) -> web.Response:
    body = await read_json(request, Anything)
    return web.json_response({"keys": len(body.model_extra or {})})


async def refuse_nul(request: web.Request) -> web.Response:
    raise asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence: 0x00")


async def page(request: web.Request) -> web.Response:
    return web.Response(text="page")


async def crash(request: web.Request) -> web.Response:
    raise ConnectionResetError("database went away")


def app() -> web.Application:
    application = web.Application(middlewares=[error_middleware])
    application.router.add_post("/echo", echo)
    application.router.add_get("/nul", refuse_nul)
    application.router.add_get("/connect/{token}", crash)
    return application


async def test_a_body_sent_in_pieces_is_read_whole(aiohttp_server) -> None:
    server = await aiohttp_server(app())
    body = json.dumps({f"field_{n}": "x" * 40 for n in range(60)}).encode()
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body[:20])
    await writer.drain()
    await asyncio.sleep(0.05)  # the rest arrives later, as over a slow network
    writer.write(body[20:])
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert answer.endswith(b'{"keys": 60}')


async def test_a_value_postgresql_cannot_hold_is_a_400(aiohttp_client) -> None:
    client = await aiohttp_client(app())
    response = await client.get("/nul")
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_request"


async def test_an_unexpected_error_logs_the_route_not_the_token(aiohttp_client) -> None:
    client = await aiohttp_client(app())
    with structlog.testing.capture_logs() as logged:
        response = await client.get("/connect/cst_SECRETSESSIONTOKEN")
    assert response.status == 500
    [entry] = [e for e in logged if e["event"] == "http.unhandled"]
    assert entry["path"] == "/connect/{token}"
    assert "cst_SECRETSESSIONTOKEN" not in repr(logged)


async def test_a_traced_request_exports_the_route_not_the_token(aiohttp_client) -> None:
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from terapi_common.http import request_log_middleware

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    instrumentor = AioHttpServerInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        traced = web.Application(middlewares=[request_log_middleware, error_middleware])
        traced.router.add_get("/connect/{token}", page)
        client = await aiohttp_client(traced)
        assert (await client.get("/connect/cst_SECRETTOKEN?code=CODE123&state=S1")).status == 200
    finally:
        instrumentor.uninstrument()
    [span] = exported.get_finished_spans()
    attributes = repr(dict(span.attributes or {})) + span.name
    assert "/connect/{token}" in attributes
    for secret in ("cst_SECRETTOKEN", "CODE123", "S1"):
        assert secret not in attributes
