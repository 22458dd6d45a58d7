"""Time of an OAuth 2 authorization, from /oauth/connect to the stored connection.

Runs the vault, gateway, webhooks and logs as separate processes against the local mock
provider (PKCE, consent approved at once), then drives whole flows one at a time over
HTTP, as a browser would: GET /oauth/connect -> 302 to the provider -> 302 back to
/oauth/callback -> result page, the connection stored in the vault.

Only Terapi's legs are timed:
- connect: validation, the flow's state and PKCE challenge, the redirect;
- callback: state check, token exchange, vault store, result page, less the provider's
  own time in its token endpoint, measured inside that endpoint.
The provider's consent leg is not timed at all. The provider's HTTP server work around
its token handler (parsing, writing, loopback) is not subtracted: it stays in callback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import aiohttp
from aiohttp import web
from harness import percentile, running, secret

from tests.e2e.catalog import mock_catalog
from tests.e2e.oauth_client import (
    connect_query,
    create_oauth_integration,
    query_of,
    result,
    start_flow,
)
from tests.e2e.stack import Stack, free_port
from tests.support import provider_thread
from tests.support.mock_provider import Behaviour, MockProvider

PROVIDER = "mock-oauth2"


class TimedProvider(MockProvider):
    """The mock provider, recording how long each token request spends in its handler."""

    def __init__(self) -> None:
        super().__init__()
        self.token_ms: list[float] = []

    async def token(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            return await super().token(request)
        finally:
            self.token_ms.append((time.perf_counter() - started) * 1000)


def start_timed_provider() -> provider_thread.RunningProvider:
    # start_provider builds its MockProvider itself; the subclass stands in for it.
    with mock.patch.object(provider_thread, "MockProvider", TimedProvider):
        running = provider_thread.start_provider(free_port())
    running.provider.behaviour = Behaviour(auto_approve=True)
    return running


@dataclass
class Timings:
    connect_ms: list[float] = field(default_factory=list)
    callback_ms: list[float] = field(default_factory=list)  # provider's token time removed
    provider_token_ms: list[float] = field(default_factory=list)

    def add(self, connect: float, callback: float, provider_token: float) -> None:
        self.connect_ms.append(connect)
        self.callback_ms.append(callback - provider_token)
        self.provider_token_ms.append(provider_token)

    @property
    def terapi_total_ms(self) -> list[float]:
        return [a + b for a, b in zip(self.connect_ms, self.callback_ms, strict=True)]


async def timed_get(http: aiohttp.ClientSession, url: str) -> tuple[float, int, str]:
    """One request with its body read; (ms, status, body)."""
    started = time.perf_counter()
    async with http.get(url, allow_redirects=False) as response:
        body = await response.text()
    return (time.perf_counter() - started) * 1000, response.status, body


async def one_flow(http: aiohttp.ClientSession, stack: Stack, provider: TimedProvider,
                   integration_id: str, connection_id: str) -> tuple[float, float, float]:
    """Run one flow; (connect ms, callback ms with the provider, provider token ms)."""
    flow_id = str(uuid.uuid4())
    started = time.perf_counter()
    async with await start_flow(http, stack, integration_id,
                                connect_query(stack, connection_id, flow_id)) as response:
        await response.read()
    connect_ms = (time.perf_counter() - started) * 1000
    assert response.status == 302, response.status
    async with http.get(response.headers["Location"], allow_redirects=False) as at_provider:
        assert at_provider.status == 302, await at_provider.text()
        callback_url = at_provider.headers["Location"]
    assert "code" in query_of(callback_url), callback_url
    exchanges = len(provider.token_ms)
    callback_ms, status, page = await timed_get(http, callback_url)
    assert status == 200, page[:500]
    assert len(provider.token_ms) == exchanges + 1, "expected one token exchange per flow"
    outcome = await result(http, stack, flow_id)
    assert outcome.get("status") == "success", outcome
    return connect_ms, callback_ms, provider.token_ms[-1]


async def run(stack: Stack, provider: TimedProvider, *, flows: int, warmup: int,
              settle: float) -> tuple[Timings, str]:
    timings = Timings()
    connector = aiohttp.TCPConnector(limit_per_host=1)  # one keep-alive connection per host
    # A browser keeps the flow cookie /oauth/connect sets; the callback must bring it back.
    jar = aiohttp.CookieJar(unsafe=True)  # unsafe: keep cookies of 127.0.0.1
    async with aiohttp.ClientSession(connector=connector, cookie_jar=jar) as http:
        client = provider.add_client()
        integration_id = await create_oauth_integration(http, stack, PROVIDER, client)
        connection_id = ""
        for number in range(warmup + flows):
            await asyncio.sleep(settle)  # let the last flow's events, webhooks and logs settle
            connection_id = f"bench-{uuid.uuid4().hex[:12]}"
            measured = await one_flow(http, stack, provider, integration_id, connection_id)
            if number >= warmup:  # the first flows warm caches and connections
                timings.add(*measured)
        await check_stored(http, stack, provider, integration_id, connection_id)
    return timings, connection_id


async def check_stored(http: aiohttp.ClientSession, stack: Stack, provider: TimedProvider,
                       integration_id: str, connection_id: str) -> None:
    """The last connection reads back through the vault with the provider's latest token."""
    async with http.get(f"{stack.vault}/connections/{connection_id}", headers=secret(stack),
                        params={"integration_id": integration_id}) as response:
        assert response.status == 200, await response.text()
        credentials = (await response.json())["credentials"]
    assert credentials["type"] == "OAUTH2", credentials["type"]
    issued = list(provider.access_tokens)
    assert credentials["access_token"] == issued[-1], "not the token the provider issued last"


def summary(values: list[float]) -> dict[str, float]:
    return {"mean": round(statistics.fmean(values), 3),
            "p50": round(percentile(values, 0.5), 3),
            "p99": round(percentile(values, 0.99), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10, help="flows run before timing")
    parser.add_argument("--settle", type=float, default=0.05, help="seconds between flows")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    provider = start_timed_provider()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            catalog = Path(tmp) / "providers.yaml"
            catalog.write_text(mock_catalog(provider.base_url))
            with running(("vault", "gateway", "webhooks", "logs"), log_level=args.log_level,
                         extra_env={"TERAPI_PROVIDERS_PATH": str(catalog)}) as stack:
                timings, connection_id = asyncio.run(run(
                    stack, provider.provider, flows=args.flows, warmup=args.warmup,
                    settle=args.settle))
    finally:
        provider.stop()
    report(timings, args.flows, connection_id)


def report(timings: Timings, flows: int, connection_id: str) -> None:
    result = {"bench": "oauth_flow", "flows": flows,
              "connect_ms": summary(timings.connect_ms),
              "callback_ms": summary(timings.callback_ms),
              "terapi_total_ms": summary(timings.terapi_total_ms),
              "provider_token_ms": summary(timings.provider_token_ms)}
    for label, key in (("connect (to the 302)", "connect_ms"),
                       ("callback, less provider", "callback_ms"),
                       ("Terapi total", "terapi_total_ms"),
                       ("provider token endpoint", "provider_token_ms")):
        figures = result[key]
        print(f"{label:<25} mean {figures['mean']:8.3f} ms  p50 {figures['p50']:8.3f} ms  "
              f"p99 {figures['p99']:8.3f} ms")
    print(f"{flows} flows timed; last connection {connection_id} read back through the vault")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
