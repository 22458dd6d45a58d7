"""GET /connect/{token}: the hosted connect page; GET /sdk/*: the frontend SDK files."""

from __future__ import annotations

import re

import pytest

from terapi_gateway import connect_api
from tests.integration.gateway.conftest import FakeVault, open_session

pytestmark = pytest.mark.integration


async def test_connect_page_is_a_locked_down_self_contained_page(
    client, vault: FakeVault
) -> None:
    env = vault.add_environment()
    token = await open_session(client, env)
    response = await client.get(f"/connect/{token}")
    assert response.status == 200
    assert response.content_type == "text/html"
    headers, page = response.headers, await response.text()
    csp = headers["Content-Security-Policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", csp).group(1)
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert page.count(f'nonce="{nonce}"') == 2  # its one style and one script
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Frame-Options"] == "DENY"
    assert not re.search(r"""(src|href)=["']?https?:""", page)  # no external assets
    assert not re.search(r"\son[a-z]+\s*=", page)  # no inline event handlers
    assert token not in page


async def test_connect_page_gets_a_fresh_nonce_each_time(client) -> None:
    first = await client.get("/connect/cst_any")
    second = await client.get("/connect/cst_any")
    csp = "Content-Security-Policy"
    assert first.headers[csp] != second.headers[csp]


async def test_connect_page_uses_the_flows_it_documents(client) -> None:
    page = await (await client.get("/connect/cst_any")).text()
    for path in ("/connect/integrations?", "/oauth/connect/", "/oauth/result/", '"/auth/"'):
        assert path in page


async def test_session_routes_still_answer_beside_the_page(client, vault: FakeVault) -> None:
    env = vault.add_environment()
    token = await open_session(client, env)
    response = await client.get("/connect/integrations", params={"connect_session_token": token})
    assert response.status == 200
    assert response.content_type == "application/json"


@pytest.mark.parametrize("name", ["terapi.js", "terapi.global.js"])
async def test_sdk_files_are_served_as_javascript_to_any_origin(client, name: str) -> None:
    source = connect_api.SDK_FILES[name]
    if not source.is_file():
        pytest.skip(f"{source} is not built in this checkout")
    response = await client.get(f"/sdk/{name}")
    assert response.status == 200
    assert response.content_type == "application/javascript"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert await response.read() == source.read_bytes()


async def test_missing_sdk_file_is_404(client, monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(connect_api.SDK_FILES, "terapi.js", tmp_path / "absent.js")
    response = await client.get("/sdk/terapi.js")
    assert response.status == 404
