"""Routes for the SDK and the hosted connect page: integration facts, the page, the SDK files."""

from __future__ import annotations

import functools
import secrets
import sys
from pathlib import Path

from aiohttp import web

from terapi_common.http import json_response
from terapi_gateway import integrations
from terapi_gateway.api import preflight
from terapi_gateway.callback import page_headers
from terapi_gateway.errors import MissingAuthTokenError
from terapi_gateway.handlers import authorize_caller
from terapi_gateway.keys import GATEWAY

CONNECT_PAGE = Path(__file__).parent / "static" / "connect.html"
REPOSITORY_SDK_FOLDER = Path(__file__).resolve().parents[3] / "sdks" / "frontend"
# Where deploy/Dockerfile copies the two files: pip installs the gateway into
# site-packages, away from the repository.
INSTALLED_SDK_FOLDER = Path(sys.prefix) / "share" / "terapi" / "sdk"
SDK_SOURCES = {
    "terapi.js": Path("src/terapi.js"),
    "terapi.global.js": Path("dist/terapi.global.js"),
}


def sdk_files(
    *, repository: Path = REPOSITORY_SDK_FOLDER, installed: Path = INSTALLED_SDK_FOLDER
) -> dict[str, Path]:
    """Each SDK file's path: the source checkout's when it has it, else the installed copy."""
    found = {}
    for name, source in SDK_SOURCES.items():
        in_repository = repository / source
        found[name] = in_repository if in_repository.is_file() else installed / name
    return found


SDK_FILES = sdk_files()


def routes() -> list[web.AbstractRouteDef]:
    # /connect/integrations comes before /connect/{token} so it is not read as a token.
    return [
        web.get("/connect/integrations", list_integrations),
        web.route("OPTIONS", "/connect/integrations", preflight),
        web.get("/connect/integrations/{integration_id}", describe_integration),
        web.route("OPTIONS", "/connect/integrations/{integration_id}", preflight),
        web.get("/connect/{token}", connect_page),
        *(web.get(f"/sdk/{name}", sdk_file) for name in SDK_FILES),
    ]


async def describe_integration(request: web.Request) -> web.Response:
    """What a flow for one integration needs from the end user; nothing secret."""
    gateway = request.app[GATEWAY]
    caller = await authorize_caller(
        gateway,
        connect_session_token=request.query.get("connect_session_token"),
        public_key=request.query.get("public_key"),
    )
    view = await integrations.describe(gateway, caller, request.match_info["integration_id"])
    return json_response(view)


async def list_integrations(request: web.Request) -> web.Response:
    """The integrations a connect session opens."""
    gateway = request.app[GATEWAY]
    token = request.query.get("connect_session_token")
    if not token:
        raise MissingAuthTokenError("send the connect_session_token of a connect session")
    caller = await authorize_caller(gateway, connect_session_token=token, public_key=None)
    return json_response({"data": await integrations.describe_all(gateway, caller)})


async def connect_page(request: web.Request) -> web.Response:
    """The hosted page where an end user connects the session's integrations.

    The session token is in the path: acceptable only because it lives 30 minutes, and
    the page sends no referrer and is never cached.
    """
    nonce = secrets.token_urlsafe(18)
    text = _file_bytes(CONNECT_PAGE).decode().replace("{{nonce}}", nonce)
    return web.Response(text=text, content_type="text/html",
                        headers=page_headers(nonce, calls_back=True))


async def sdk_file(request: web.Request) -> web.StreamResponse:
    """The frontend SDK, as the repository has it."""
    body = _file_bytes(SDK_FILES[request.path.rsplit("/", 1)[-1]])
    if body is None:
        raise web.HTTPNotFound()
    return web.Response(
        body=body,
        content_type="application/javascript",
        charset="utf-8",
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300",
                 "X-Content-Type-Options": "nosniff"},
    )


@functools.cache
def _file_bytes(path: Path) -> bytes | None:
    """A static file's content, read once per process (None if it is missing): these pages
    and scripts ship with the release, so there is nothing to re-read per request."""
    return path.read_bytes() if path.is_file() else None
