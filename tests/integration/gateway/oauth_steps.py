"""Steps of an OAuth flow as a browser takes them: connect, the provider, the callback."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import orjson

from tests.integration.gateway.conftest import Environment

APP_ORIGIN = "https://app.example.com"


def connect_params(env: Environment, **extra: Any) -> dict[str, str]:
    """A connect query with the public key, a fresh flow id and the app's origin."""
    params = {"public_key": env.public_key, "flow_id": str(uuid.uuid4()), "origin": APP_ORIGIN}
    for name, value in extra.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value if isinstance(value, str) else orjson.dumps(value).decode()
    return params


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def path_of(url: str) -> str:
    """The path and query of an absolute URL, to replay it against the test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def same_browser(source, target) -> None:
    """Give `target` the cookies `source` holds: one browser reaching another replica."""
    for morsel in source.session.cookie_jar:
        target.session.cookie_jar.update_cookies({morsel.key: morsel.value},
                                                 target.make_url("/"))


async def connect(client, integration_id: str, params: dict[str, str]):
    return await client.get(
        f"/oauth/connect/{integration_id}", params=params, allow_redirects=False
    )


async def at_provider(url: str, *, data: dict[str, str] | None = None) -> str:
    """Follow the end user to the provider; where the provider sends them back."""
    async with aiohttp.ClientSession() as http:
        request = (http.post(url, data=data, allow_redirects=False) if data is not None
                   else http.get(url, allow_redirects=False))
        async with request as response:
            assert response.status == 302, await response.text()
            return response.headers["Location"]


@dataclass
class Flow:
    """What one run through an OAuth flow left behind."""

    params: dict[str, str]
    authorize_url: str
    callback_url: str
    page: Any  # the callback's response

    @property
    def flow_id(self) -> str:
        return self.params["flow_id"]


async def run(client, env: Environment, integration_id: str, **extra: Any) -> Flow:
    """connect -> provider (auto-approving) -> callback."""
    params = connect_params(env, **extra)
    started = await connect(client, integration_id, params)
    assert started.status == 302, await started.text()
    authorize_url = started.headers["Location"]
    callback_url = await at_provider(authorize_url)
    page = await client.get(path_of(callback_url), allow_redirects=False)
    return Flow(params, authorize_url, callback_url, page)


async def result_of(client, flow_id: str, wait: str = "0") -> dict[str, Any]:
    response = await client.get(f"/oauth/result/{flow_id}", params={"wait": wait})
    assert response.status == 200, await response.text()
    return await response.json()


def mock_oauth2_integration(vault, provider) -> tuple[Environment, str]:
    """A fresh environment with an integration of the mock OAuth 2 provider (PKCE)."""
    env = vault.add_environment()
    return env, vault.add_integration(env, "mock-oauth2", "OAUTH2", client=provider.add_client())


async def begin(client, env: Environment, integration_id: str, **extra: Any):
    """Start a flow; its query (flow id included) and the gateway's answer."""
    params = connect_params(env, **extra)
    return params, await connect(client, integration_id, params)
