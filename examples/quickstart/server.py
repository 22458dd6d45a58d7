"""A small app next to Terapi: its backend opens connect sessions and receives webhooks.

Run Terapi (`scripts/up.sh`), then, from the repository root:

    export TERAPI_SECRET_KEY=$(.venv/bin/terapi keys show --env dev --json | jq -r .secret_key)
    export TERAPI_WEBHOOK_SECRET=$(.venv/bin/terapi keys show --env dev --json | jq -r .webhook_secret)
    .venv/bin/python examples/quickstart/server.py

and open http://localhost:4000. Point the environment's webhook URL at
http://localhost:4000/webhooks/terapi (the page's "Use this app for webhooks" button does it).
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

import aiohttp
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

HERE = Path(__file__).parent
SETTINGS = web.AppKey("settings", dict)
RECEIVED = web.AppKey("received", deque)
HTTP = web.AppKey("http", aiohttp.ClientSession)


def terapi_headers(app: web.Application) -> dict[str, str]:
    return {"Authorization": f"Bearer {app[SETTINGS]['secret_key']}"}


async def index(request: web.Request) -> web.Response:
    page = (HERE / "index.html").read_text()
    return web.Response(text=page.replace("{{TERAPI_HOST}}", request.app[SETTINGS]["host"]),
                        content_type="text/html")


async def create_session(request: web.Request) -> web.Response:
    """The app's backend asks Terapi for a connect session for its signed-in user."""
    body = await request.json()
    payload = {"end_user": {"id": body.get("user_id") or "demo-user",
                            "email": body.get("email") or None}}
    if body.get("allowed_integrations"):
        payload["allowed_integrations"] = body["allowed_integrations"]
    async with request.app[HTTP].post(f"{request.app[SETTINGS]['host']}/connect/sessions",
                                      headers=terapi_headers(request.app),
                                      json=payload) as response:
        return web.json_response(await response.json(), status=response.status)


async def use_for_webhooks(request: web.Request) -> web.Response:
    """Point the Terapi environment's webhooks at this app."""
    url = f"{request.scheme}://{request.host}/webhooks/terapi"
    async with request.app[HTTP].patch(f"{request.app[SETTINGS]['api']}/environment",
                                       headers=terapi_headers(request.app),
                                       json={"webhook_url": url,
                                             "send_auth_failure_webhooks": True}) as response:
        return web.json_response(await response.json(), status=response.status)


async def receive_webhook(request: web.Request) -> web.Response:
    """Verify the Standard Webhooks signature before trusting anything in the body."""
    body = await request.read()
    try:
        payload = Webhook(request.app[SETTINGS]["webhook_secret"]).verify(body, request.headers)
    except WebhookVerificationError:
        return web.json_response({"error": "bad signature"}, status=400)
    request.app[RECEIVED].appendleft(payload)
    return web.Response(status=204)


async def list_webhooks(request: web.Request) -> web.Response:
    return web.json_response({"data": list(request.app[RECEIVED])})


async def read_connection(request: web.Request) -> web.Response:
    """What the backend does after the webhook: read fresh credentials (shown masked)."""
    params = {"integration_id": request.query.get("integration_id", "")}
    url = f"{request.app[SETTINGS]['api']}/connections/{request.match_info['connection_id']}"
    async with request.app[HTTP].get(url, headers=terapi_headers(request.app),
                                     params=params) as response:
        data = await response.json()
    if response.status == 200:
        data["credentials"] = {k: (v[:4] + "…" if isinstance(v, str) and k != "type" else v)
                               for k, v in data["credentials"].items() if k != "raw"}
    return web.json_response(data, status=response.status)


async def http_client(app: web.Application):
    app[HTTP] = aiohttp.ClientSession()
    yield
    await app[HTTP].close()


def build_app(settings: dict[str, str]) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app[RECEIVED] = deque(maxlen=100)
    app.cleanup_ctx.append(http_client)
    app.router.add_get("/", index)
    app.router.add_post("/api/session", create_session)
    app.router.add_post("/api/use-for-webhooks", use_for_webhooks)
    app.router.add_get("/api/webhooks", list_webhooks)
    app.router.add_get("/api/connections/{connection_id}", read_connection)
    app.router.add_post("/webhooks/terapi", receive_webhook)
    return app


def settings_from_env() -> dict[str, str]:
    host = os.environ.get("TERAPI_HOST", "http://localhost:3003").rstrip("/")
    return {
        "host": host,
        "api": os.environ.get("TERAPI_API_URL", host).rstrip("/"),
        "secret_key": os.environ["TERAPI_SECRET_KEY"],
        "webhook_secret": os.environ["TERAPI_WEBHOOK_SECRET"],
    }


if __name__ == "__main__":
    web.run_app(build_app(settings_from_env()), host="127.0.0.1",
                port=int(os.environ.get("PORT", "4000")))
