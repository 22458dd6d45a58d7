"""Drive OAuth flows over plain HTTP, as a browser would, for the end-to-end tests."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from tests.e2e.stack import Stack


def browser() -> aiohttp.ClientSession:
    """A client that keeps cookies like a browser, 127.0.0.1 included (the flow cookie)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def bearer(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.keys['secret_key']}"}


async def create_oauth_integration(http: aiohttp.ClientSession, stack: Stack, provider: str,
                                   client, *, scopes: list[str] | None = None,
                                   kind: str = "OAUTH2") -> str:
    integration_id = f"{provider}-{uuid.uuid4().hex[:8]}"
    body = {"integration_id": integration_id, "provider": provider,
            "credentials": {"type": kind, "client_id": client.client_id,
                            "client_secret": client.client_secret, "scopes": scopes or []}}
    async with http.post(f"{stack.vault}/integrations", headers=bearer(stack),
                         json=body) as response:
        assert response.status == 201, await response.text()
    return integration_id


@dataclass
class FlowResult:
    connect_status: int
    page: str
    result: dict[str, Any]
    provider_location: str | None
    callback_url: str | None


def connect_query(stack: Stack, connection_id: str, flow_id: str, **extra: Any) -> dict[str, str]:
    query = {"connection_id": connection_id, "public_key": stack.keys["public_key"],
             "flow_id": flow_id, "origin": "http://app.example.test"}
    for name, value in extra.items():
        if value is not None:
            query[name] = value if isinstance(value, str) else json.dumps(value)
    return query


async def start_flow(http: aiohttp.ClientSession, stack: Stack, integration_id: str,
                     query: dict[str, str]) -> aiohttp.ClientResponse:
    return await http.get(f"{stack.gateway}/oauth/connect/{integration_id}", params=query,
                          allow_redirects=False)


async def run_flow(http: aiohttp.ClientSession, stack: Stack, integration_id: str,
                   connection_id: str, **extra: Any) -> FlowResult:
    """connect -> provider (auto-approving) -> callback -> result channel."""
    flow_id = str(uuid.uuid4())
    response = await start_flow(http, stack, integration_id,
                                connect_query(stack, connection_id, flow_id, **extra))
    location = response.headers.get("Location")
    page = await response.text()
    callback_url = None
    if response.status == 302 and location:
        at_provider = await http.get(location, allow_redirects=False)
        callback_url = at_provider.headers.get("Location")
        assert at_provider.status == 302, await at_provider.text()
        callback = await http.get(callback_url, allow_redirects=False)
        page = await callback.text()
    return FlowResult(response.status, page, await result(http, stack, flow_id), location,
                      callback_url)


async def result(http: aiohttp.ClientSession, stack: Stack, flow_id: str) -> dict[str, Any]:
    async with http.get(f"{stack.gateway}/oauth/result/{flow_id}",
                        params={"wait": "5"}) as response:
        if response.status == 404:
            return {"status": "unknown"}
        return await response.json()


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
