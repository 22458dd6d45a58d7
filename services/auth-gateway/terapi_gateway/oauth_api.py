"""The OAuth routes: start a flow, come back from the provider, read a flow's result."""

from __future__ import annotations

from aiohttp import web

from terapi_common.http import json_response
from terapi_gateway import browser_binding, oauth, oauth_callback
from terapi_gateway.api import preflight
from terapi_gateway.callback import NO_STORE_HEADERS, result_response
from terapi_gateway.flow import parse_flow_id, parse_wait
from terapi_gateway.keys import GATEWAY
from terapi_gateway.oauth import ConnectQuery, Outcome


def routes() -> list[web.AbstractRouteDef]:
    return [
        # No HEAD: both change state (a flow starts, a state is used up), and link
        # checkers send HEAD requests nobody meant as an authorization.
        web.get("/oauth/connect/{integration_id}", connect, allow_head=False),
        web.get("/oauth/callback", callback, allow_head=False),
        web.get("/oauth/result/{flow_id}", result),
        web.route("OPTIONS", "/oauth/result/{flow_id}", preflight),
    ]


async def connect(request: web.Request) -> web.Response:
    """Send the end user to the provider, or show why the flow cannot start."""
    query, gateway = request.query, request.app[GATEWAY]
    cookie = browser_binding.cookie_name(gateway.public_base)
    outcome = await oauth.start_flow(
        gateway,
        ConnectQuery(
            integration_id=request.match_info["integration_id"],
            **{name: query.get(name) for name in CONNECT_PARAMETERS},
        ),
        browser_cookie=request.cookies.get(cookie),
    )
    response = _answer(outcome)
    if outcome.browser_cookie is not None:
        _set_browser_cookie(response, outcome.browser_cookie, public_base=gateway.public_base)
    return response


CONNECT_PARAMETERS = (
    "connection_id", "connect_session_token", "public_key", "params", "scopes",
    "authorization_params", "flow_id", "origin", "return_url",
)


async def callback(request: web.Request) -> web.Response:
    """Where the provider sends the end user back."""
    gateway = request.app[GATEWAY]
    outcome = await oauth_callback.finish_flow(
        gateway, dict(request.query),
        browser_cookie=request.cookies.get(browser_binding.cookie_name(gateway.public_base)),
    )
    return _answer(outcome)


async def result(request: web.Request) -> web.Response:
    """A flow's result for the SDK; waits up to `wait` seconds while it is pending."""
    flow_id = parse_flow_id(request.match_info["flow_id"])
    wait = parse_wait(request.query.get("wait"))
    found = await oauth.await_result(request.app[GATEWAY], flow_id, wait=wait)
    return json_response(found.to_dict(), headers={"Cache-Control": "no-store"})


def _set_browser_cookie(response: web.Response, value: str, *, public_base: str) -> None:
    # Lax still comes back on the callback: a top-level navigation from the provider.
    response.set_cookie(
        browser_binding.cookie_name(public_base), value, max_age=browser_binding.COOKIE_MAX_AGE,
        path="/", httponly=True, samesite="Lax", secure=browser_binding.is_secure(public_base),
    )


def _answer(outcome: Outcome) -> web.Response:
    if outcome.redirect_to is not None:
        return web.Response(status=302, headers={**NO_STORE_HEADERS,
                                                 "Location": outcome.redirect_to})
    assert outcome.result is not None
    return result_response(outcome.result, outcome.target, status=outcome.http_status)
