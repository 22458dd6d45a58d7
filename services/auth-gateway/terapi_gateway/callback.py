"""How a flow's result reaches the browser: the popup page that posts it, or a redirect.

The page posts to `window.opener` with exactly the flow's origin as target (never "*"),
so no other site that opened the popup can read the outcome; without an opener it only
shows the outcome as text.
"""

from __future__ import annotations

import html
import secrets
from typing import Any

import orjson
from aiohttp import web

from terapi_gateway.flow import FlowResult, ResultTarget, result_redirect

NO_STORE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def page_headers(nonce: str, *, calls_back: bool = False) -> dict[str, str]:
    """A strict CSP (only our nonce'd script and style) plus the no-store headers;
    `calls_back` lets the page's script call Terapi's own endpoints (the hosted page)."""
    csp = (
        "default-src 'none'; " + ("connect-src 'self'; " if calls_back else "") +
        f"script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return {**NO_STORE_HEADERS, "Content-Security-Policy": csp}


def result_response(result: FlowResult, target: ResultTarget, *, status: int) -> web.Response:
    """The browser's answer: a redirect to the return URL, or the result page."""
    if target.return_url is not None:
        return web.Response(
            status=302,
            headers={**NO_STORE_HEADERS, "Location": result_redirect(target.return_url, result)},
        )
    nonce = secrets.token_urlsafe(18)
    return web.Response(
        status=status,
        text=_page(result, target, nonce),
        content_type="text/html",
        headers=page_headers(nonce),
    )


def opener_message(result: FlowResult, target: ResultTarget) -> dict[str, Any]:
    """The message the SDK listens for."""
    flow_id = str(target.flow_id) if target.flow_id is not None else None
    if result.status == "success":
        return {
            "source": "terapi", "flowId": flow_id, "type": "success",
            "integrationId": result.integration_id, "connectionId": result.connection_id,
        }
    error = result.error
    return {
        "source": "terapi", "flowId": flow_id, "type": "error",
        "error": {"type": error.code if error else "internal_error",
                  "message": error.message if error else "internal error"},
    }


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element (no `</script>`, no line separators)."""
    text = orjson.dumps(value).decode()
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def _summary(result: FlowResult) -> tuple[str, str]:
    if result.status == "success":
        return "Connected", "The connection is ready. You can close this window."
    code = result.error.code if result.error else "internal_error"
    message = result.error.message if result.error else "internal error"
    return "Connection failed", f"{message} ({code}). You can close this window."


def _page(result: FlowResult, target: ResultTarget, nonce: str) -> str:
    title, text = _summary(result)
    script = ""
    if target.origin is not None:
        script = f"""<script nonce="{nonce}">
(function () {{
  var message = {script_json(opener_message(result, target))};
  var origin = {script_json(target.origin)};
  if (window.opener && !window.opener.closed) {{
    window.opener.postMessage(message, origin);
    window.close();
  }}
}})();
</script>"""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style nonce="{nonce}">
body {{ font-family: system-ui, sans-serif; margin: 3rem auto; max-width: 32rem;
       padding: 0 1rem; color: #1f2328; }}
h1 {{ font-size: 1.4rem; }}
</style></head>
<body><h1 id="terapi-title">{html.escape(title)}</h1>
<p id="terapi-message">{html.escape(text)}</p>
{script}</body></html>
"""
