"""A local OAuth 2 / OAuth 1.0a provider that behaves like real ones, for tests.

It checks client credentials, the redirect URI and the PKCE verifier, issues expiring
access tokens and refresh tokens, can deny consent, and can answer the token exchange
with an error or malformed JSON. Consent is a real page with Allow / Deny buttons (for
the browser tests) unless `auto_approve` is set (for HTTP-level tests).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web
from authlib.oauth1.rfc5849.signature import (
    construct_base_string,
    hmac_sha1_signature,
)


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str] = field(default_factory=list)  # empty: any redirect URI


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class IssuedToken:
    client_id: str
    scope: str
    expires_at: float


@dataclass
class Behaviour:
    """Knobs a test turns to make the provider misbehave like real ones do."""

    auto_approve: bool = False
    token_error: str | None = None  # e.g. "invalid_grant": the next exchanges fail
    malformed_token_response: bool = False
    token_status: int = 200
    token_in_pieces: bool = False  # the token answer flushed in small pieces, like slow ones
    access_token_lifetime: int = 3600
    issue_refresh_tokens: bool = True
    sever_opener: bool = False  # consent page sets window.opener = null, like some providers
    extra_token_fields: dict[str, Any] = field(default_factory=dict)
    callback_extra_params: dict[str, str] = field(default_factory=dict)
    # What /api/accessible-resources lists for a valid token, like Atlassian's endpoint.
    accessible_sites: list[dict[str, Any]] = field(default_factory=lambda: [
        {"id": "1324a887-45db-1bf4-1e99-ef0ff456d421", "url": "https://acme.example.com",
         "name": "Acme"}])


class MockProvider:
    """State and routes of the fake provider."""

    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        self.grants: dict[str, Grant] = {}
        self.access_tokens: dict[str, IssuedToken] = {}
        self.refresh_tokens: dict[str, IssuedToken] = {}
        self.revoked: list[str] = []
        self.behaviour = Behaviour()
        self.token_requests: list[dict[str, str]] = []
        self.authorize_requests: list[dict[str, str]] = []
        # OAuth 1.0a
        self.request_tokens: dict[str, dict[str, str]] = {}
        self.oauth1_access: dict[str, str] = {}
        # Every request's path and query; what the token and check endpoints were sent
        self.paths: list[str] = []
        self.token_headers: list[dict[str, str]] = []
        self.basic_users: dict[str, str] = {}
        self.check_headers: list[dict[str, str]] = []

    def add_client(self, client_id: str | None = None, *, redirect_uris: list[str] | None = None
                   ) -> Client:
        client = Client(client_id or f"client-{secrets.token_hex(4)}", secrets.token_urlsafe(24),
                        redirect_uris or [])
        self.clients[client.client_id] = client
        return client

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record_path])
        app.router.add_get("/oauth/authorize", self.authorize)
        app.router.add_post("/oauth/authorize/decision", self.decision)
        app.router.add_post("/oauth/token", self.token)
        app.router.add_get("/api/basic-check", self.basic_check)
        app.router.add_post("/oauth/revoke", self.revoke)
        app.router.add_get("/api/me", self.me)
        app.router.add_get("/api/accessible-resources", self.accessible_resources)
        app.router.add_get("/api/key-check", self.key_check)
        # Tenant-scoped copies, like https://{subdomain}.zendesk.com/oauth/...
        app.router.add_get("/t/{tenant}/oauth/authorize", self.authorize)
        app.router.add_post("/t/{tenant}/oauth/token", self.token)
        app.router.add_post("/oauth1/request_token", self.oauth1_request_token)
        app.router.add_get("/oauth1/authorize", self.oauth1_authorize)
        app.router.add_post("/oauth1/authorize/decision", self.oauth1_decision)
        app.router.add_post("/oauth1/access_token", self.oauth1_access_token)
        return app

    @web.middleware
    async def _record_path(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.paths.append(request.path_qs)
        return await handler(request)

    # ------------------------------------------------------------ credential checks

    async def basic_check(self, request: web.Request) -> web.Response:
        """Accepts HTTP Basic credentials of the users in `basic_users`."""
        self.check_headers.append(dict(request.headers))
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            username, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if self.basic_users.get(username) == password:
                return web.json_response({"ok": True})
        return web.json_response({"error": "unauthorized"}, status=401)

    # ------------------------------------------------------------ OAuth 2

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        self.authorize_requests.append({**query, "_tenant": request.match_info.get("tenant", "")})
        client = self.clients.get(query.get("client_id", ""))
        if client is None or query.get("response_type") != "code":
            return web.Response(status=400, text="unknown client or response_type")
        redirect_uri = query.get("redirect_uri", "")
        if client.redirect_uris and redirect_uri not in client.redirect_uris:
            # RFC 6749 §4.1.2.1: never redirect to an unregistered URI.
            return web.Response(status=400, text="redirect_uri mismatch")
        if self.behaviour.auto_approve:
            return self._approve(query)
        return web.Response(text=self._consent_page("/oauth/authorize/decision", query),
                            content_type="text/html")

    async def decision(self, request: web.Request) -> web.StreamResponse:
        form = dict(await request.post())
        if form.pop("decision", "") != "allow":
            return _redirect(form["redirect_uri"], error="access_denied",
                             error_description="The user denied access", state=form.get("state"))
        return self._approve(form)

    def _approve(self, query: dict[str, str]) -> web.StreamResponse:
        code = secrets.token_urlsafe(16)
        self.grants[code] = Grant(
            client_id=query["client_id"], redirect_uri=query.get("redirect_uri", ""),
            scope=query.get("scope", ""), code_challenge=query.get("code_challenge"),
            code_challenge_method=query.get("code_challenge_method"),
            expires_at=time.time() + 300,
        )
        return _redirect(query["redirect_uri"], code=code, state=query.get("state"),
                         **self.behaviour.callback_extra_params)

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_requests.append({k: v for k, v in form.items()})
        self.token_headers.append(dict(request.headers))
        client = self._authenticate_client(request, form)
        if client is None:
            return _oauth_error("invalid_client", "client authentication failed", 401)
        if self.behaviour.malformed_token_response:
            return web.Response(text="<html>not json", content_type="text/html")
        if self.behaviour.token_error:
            return _oauth_error(self.behaviour.token_error, "the provider refused", 400)
        answer = self._grant(client, form)
        if self.behaviour.token_in_pieces:
            return await _in_pieces(request, answer)
        return answer

    def _grant(self, client: Client, form: dict[str, str]) -> web.Response:
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(client, form)
        if grant_type == "refresh_token":
            return self._refresh(client, form)
        if grant_type == "client_credentials":
            return self._issue(client, form.get("scope", ""), refresh=False)
        return _oauth_error("unsupported_grant_type", f"grant_type {grant_type!r}", 400)

    def _authenticate_client(self, request: web.Request, form: dict[str, str]) -> Client | None:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            decoded = base64.b64decode(header[6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
        client = self.clients.get(client_id or "")
        if client is None or not secrets.compare_digest(client.client_secret, client_secret or ""):
            return None
        return client

    def _exchange_code(self, client: Client, form: dict[str, str]) -> web.Response:
        grant = self.grants.pop(form.get("code", ""), None)
        if grant is None or grant.expires_at < time.time() or grant.client_id != client.client_id:
            return _oauth_error("invalid_grant", "unknown, used or expired code", 400)
        if grant.redirect_uri != form.get("redirect_uri", ""):
            return _oauth_error("invalid_grant", "redirect_uri does not match", 400)
        if grant.code_challenge and not _pkce_ok(grant, form.get("code_verifier", "")):
            return _oauth_error("invalid_grant", "PKCE verification failed", 400)
        return self._issue(client, grant.scope, refresh=self.behaviour.issue_refresh_tokens)

    def _refresh(self, client: Client, form: dict[str, str]) -> web.Response:
        old = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
        if old is None or old.client_id != client.client_id:
            return _oauth_error("invalid_grant", "unknown refresh token", 400)
        return self._issue(client, old.scope, refresh=True)

    def _issue(self, client: Client, scope: str, *, refresh: bool) -> web.Response:
        access = f"at-{secrets.token_urlsafe(18)}"
        lifetime = self.behaviour.access_token_lifetime
        self.access_tokens[access] = IssuedToken(client.client_id, scope, time.time() + lifetime)
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer",
                                "expires_in": lifetime, "scope": scope}
        if refresh:
            token = f"rt-{secrets.token_urlsafe(18)}"
            self.refresh_tokens[token] = IssuedToken(client.client_id, scope, time.time() + 86400)
            body["refresh_token"] = token
        body.update(self.behaviour.extra_token_fields)
        return web.json_response(body, status=self.behaviour.token_status)

    async def revoke(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        if self._authenticate_client(request, form) is None:
            return _oauth_error("invalid_client", "client authentication failed", 401)
        token = form.get("token", "")
        self.revoked.append(token)
        self.access_tokens.pop(token, None)
        self.refresh_tokens.pop(token, None)
        return web.Response(status=200)

    async def me(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        issued = self.access_tokens.get(token)
        if issued is None or issued.expires_at < time.time():
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response({"id": "provider-user-1", "scope": issued.scope})

    async def accessible_resources(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        issued = self.access_tokens.get(token)
        if issued is None or issued.expires_at < time.time():
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response(self.behaviour.accessible_sites)

    async def key_check(self, request: web.Request) -> web.Response:
        """An API that accepts keys starting with `good-`, to test connect-time verification."""
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if key.startswith("good-"):
            return web.json_response({"ok": True})
        return web.json_response({"error": "invalid_api_key"}, status=401)

    # ------------------------------------------------------------ OAuth 1.0a

    async def oauth1_request_token(self, request: web.Request) -> web.Response:
        params, client = await self._verify_oauth1(request, token_secret="")
        if client is None:
            return web.Response(status=401, text="oauth_problem=signature_invalid")
        token, secret = f"rq-{secrets.token_hex(8)}", secrets.token_hex(12)
        self.request_tokens[token] = {
            "secret": secret, "callback": params.get("oauth_callback", ""),
            "client_id": client.client_id, "verifier": "",
        }
        return _form({"oauth_token": token, "oauth_token_secret": secret,
                      "oauth_callback_confirmed": "true"})

    async def oauth1_authorize(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        if query.get("oauth_token") not in self.request_tokens:
            return web.Response(status=400, text="unknown oauth_token")
        if self.behaviour.auto_approve:
            return self._oauth1_approve(query["oauth_token"])
        return web.Response(text=self._consent_page("/oauth1/authorize/decision", query),
                            content_type="text/html")

    async def oauth1_decision(self, request: web.Request) -> web.StreamResponse:
        form = dict(await request.post())
        token = form.get("oauth_token", "")
        if form.get("decision") != "allow":
            pending = self.request_tokens.pop(token, {"callback": ""})
            return _redirect(pending["callback"], denied=token)
        return self._oauth1_approve(token)

    def _oauth1_approve(self, token: str) -> web.StreamResponse:
        pending = self.request_tokens[token]
        pending["verifier"] = secrets.token_hex(8)
        return _redirect(pending["callback"], oauth_token=token, oauth_verifier=pending["verifier"])

    async def oauth1_access_token(self, request: web.Request) -> web.Response:
        header = _oauth1_header(request)
        pending = self.request_tokens.get(header.get("oauth_token", ""))
        if pending is None:
            return web.Response(status=401, text="oauth_problem=token_rejected")
        params, client = await self._verify_oauth1(request, token_secret=pending["secret"])
        if client is None or params.get("oauth_verifier") != pending["verifier"]:
            return web.Response(status=401, text="oauth_problem=verifier_invalid")
        del self.request_tokens[header["oauth_token"]]
        token, secret = f"ac-{secrets.token_hex(8)}", secrets.token_hex(12)
        self.oauth1_access[token] = secret
        return _form({"oauth_token": token, "oauth_token_secret": secret})

    async def _verify_oauth1(self, request: web.Request, *, token_secret: str
                             ) -> tuple[dict[str, str], Client | None]:
        header = _oauth1_header(request)
        client = self.clients.get(header.get("oauth_consumer_key", ""))
        if client is None or header.get("oauth_signature_method") != "HMAC-SHA1":
            return header, None
        form = dict(await request.post()) if request.can_read_body else {}
        params = [(k, v) for k, v in header.items() if k not in ("oauth_signature", "realm")]
        params += list(request.query.items()) + list(form.items())
        # construct_base_string normalizes the URI and the parameters itself (RFC 5849 §3.4.1).
        base = construct_base_string(request.method, str(request.url), params)
        expected = hmac_sha1_signature(base, client.client_secret, token_secret)
        ok = secrets.compare_digest(expected, header.get("oauth_signature", ""))
        return header, client if ok else None

    # ------------------------------------------------------------ pages

    def _consent_page(self, action: str, fields: dict[str, str]) -> str:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in fields.items()
        )
        sever = "<script>window.opener = null;</script>" if self.behaviour.sever_opener else ""
        who = html.escape(fields.get("client_id", fields.get("oauth_token", "")))
        return f"""<!doctype html><html><head><title>Mock provider consent</title></head>
<body>{sever}<h1>Authorize {who}?</h1>
<p>Scopes: <span id="scopes">{html.escape(fields.get('scope', ''))}</span></p>
<form method="post" action="{action}">{hidden}
<button id="allow" name="decision" value="allow">Allow</button>
<button id="deny" name="decision" value="deny">Deny</button></form></body></html>"""


def _pkce_ok(grant: Grant, verifier: str) -> bool:
    """RFC 7636 §4.6: S256 compares BASE64URL(SHA256(verifier)) to the challenge."""
    if grant.code_challenge_method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    else:
        computed = verifier
    return bool(verifier) and secrets.compare_digest(computed, grant.code_challenge or "")


def _oauth1_header(request: web.Request) -> dict[str, str]:
    header = request.headers.get("Authorization", "")
    if not header.startswith("OAuth "):
        return {}
    from urllib.parse import unquote

    pairs = [p.strip().split("=", 1) for p in header[6:].split(",") if "=" in p]
    return {unquote(k): unquote(v.strip('"')) for k, v in pairs}


def _redirect(uri: str, **params: str | None) -> web.StreamResponse:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query) + [(k, v) for k, v in params.items() if v is not None]
    raise web.HTTPFound(urlunsplit(parts._replace(query=urlencode(query))))


async def _in_pieces(request: web.Request, answer: web.Response) -> web.StreamResponse:
    """`answer` written as separate flushed pieces with pauses between them."""
    response = web.StreamResponse(status=answer.status,
                                  headers={"Content-Type": answer.content_type})
    await response.prepare(request)
    body = answer.body if isinstance(answer.body, bytes) else b""
    for start in range(0, len(body), 16):
        await response.write(body[start:start + 16])
        await asyncio.sleep(0.002)
    await response.write_eof()
    return response


def _oauth_error(code: str, description: str, status: int) -> web.Response:
    return web.json_response({"error": code, "error_description": description}, status=status)


def _form(values: dict[str, str]) -> web.Response:
    return web.Response(text=urlencode(values), content_type="application/x-www-form-urlencoded")
