"""The gateway's HTTP routes: connect sessions for backends, credential flows for browsers."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from terapi_common.errors import InvalidInputError
from terapi_common.http import Handler, json_response, read_json
from terapi_gateway import handlers
from terapi_gateway.domain import ConnectSessionRequest
from terapi_gateway.flow import parse_scopes, read_connect_request
from terapi_gateway.keys import GATEWAY
from terapi_gateway.providers import CREDENTIALS_MODES, CredentialsMode

# Browsers may call these from the app's frontend; /connect/sessions is backend-only.
BROWSER_PATHS = frozenset({
    *(f"/auth/{mode.slug}/{{integration_id}}" for mode in CREDENTIALS_MODES),
    "/oauth/result/{flow_id}",
    "/connect/integrations",
    "/connect/integrations/{integration_id}",
})
CORS_ALLOWED_HEADERS = "Content-Type, X-Request-Id"
CORS_MAX_AGE_SECONDS = 600


class JsonObject(BaseModel):
    """Any JSON object; the auth mode reads and checks its own fields."""

    model_config = ConfigDict(extra="allow")


def routes() -> list[web.AbstractRouteDef]:
    """Every gateway route; each credentials mode gets `/auth/<slug>/{integration_id}`."""
    table: list[web.AbstractRouteDef] = [web.post("/connect/sessions", create_connect_session)]
    for mode in CREDENTIALS_MODES:
        path = f"/auth/{mode.slug}/{{integration_id}}"
        table += [web.post(path, credentials_view(mode)), web.route("OPTIONS", path, preflight)]
    return table


async def create_connect_session(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    identity = await gateway.keys.for_request(request)
    body = await read_json(request, ConnectSessionRequest)
    opened = await handlers.open_connect_session(gateway, identity, body)
    return json_response(
        {
            "token": opened.token,
            "expires_at": opened.expires_at.astimezone(UTC).isoformat(),
            "connect_link": opened.connect_link,
        },
        status=201,
    )


def credentials_view(mode: CredentialsMode) -> Handler:
    """The view that stores credentials typed by the end user, for one auth mode."""

    async def view(request: web.Request) -> web.Response:
        gateway = request.app[GATEWAY]
        caller = await handlers.authorize_caller(
            gateway,
            connect_session_token=request.query.get("connect_session_token"),
            public_key=request.query.get("public_key"),
        )
        fields = dict((await read_json(request, JsonObject)).model_extra or {})
        stored = await handlers.connect_with_credentials(
            gateway,
            caller,
            mode=mode,
            integration_id=request.match_info["integration_id"],
            connection_id=request.query.get("connection_id"),
            fields=fields,
            connection_config=connection_config_of(request, fields.pop("connection_config", None)),
            scopes=parse_scopes(request.query.get("scopes")),
        )
        return json_response(
            {"integration_id": stored.integration_id, "connection_id": stored.connection_id}
        )

    return view


def connection_config_of(request: web.Request, in_body: Any) -> dict[str, Any]:
    """Connection config from the body's `connection_config` or the query's `params` JSON."""
    from_query = read_connect_request(
        params=request.query.get("params"), scopes=None, authorization_params=None
    ).connection_config
    if in_body is None:
        return from_query
    if not isinstance(in_body, dict):
        raise InvalidInputError("connection_config must be a JSON object")
    if from_query:
        raise InvalidInputError("send connection_config in the body or params, not both")
    return in_body


async def preflight(request: web.Request) -> web.Response:
    """Answer a CORS preflight with the methods the path serves."""
    resource = request.match_info.route.resource
    methods = sorted({r.method for r in resource or () if r.method != "OPTIONS"})
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": ", ".join(methods),
            "Access-Control-Allow-Headers": CORS_ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(CORS_MAX_AGE_SECONDS),
        },
    )


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Let the page that called a browser route read the answer, errors included.

    A response signal rather than a view decorator, so the error middleware's answers
    get the headers too. No credentials are allowed, so echoing the origin is safe.
    """
    origin = request.headers.get("Origin")
    resource = request.match_info.route.resource
    if origin is None or resource is None or resource.canonical not in BROWSER_PATHS:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = "X-Request-Id"
    vary = response.headers.get("Vary")
    response.headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
