"""Secrets never reach a log line, whatever shape they arrive in."""

from __future__ import annotations

import json

import structlog

from terapi_common.logging import REDACTED, redact, redact_text, setup


def test_secret_named_fields_are_masked_at_any_depth() -> None:
    masked = redact({"credentials": {"api_key": "sk-1"}, "nested": {"client_secret": "s",
                     "name": "ok"}, "list": [{"refresh_token": "r"}]})
    assert masked == {"credentials": REDACTED, "nested": {"client_secret": REDACTED, "name": "ok"},
                      "list": [{"refresh_token": REDACTED}]}


def test_secrets_inside_urls_and_headers_are_masked() -> None:
    text = redact_text("GET /cb?code=abc123&state=xyz Authorization: Bearer sk_live_1")
    assert "abc123" not in text and "sk_live_1" not in text
    assert "state=xyz" in text


def test_log_output_masks_secrets_passed_as_fields(capsys) -> None:
    setup("test", level="info", fmt="json")
    structlog.get_logger().info("stored", api_key="sk-should-not-appear", connection_id="c1",
                                url="https://x/cb?access_token=tok-should-not-appear")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert "should-not-appear" not in line
    assert record["connection_id"] == "c1" and record["service"] == "test"
    structlog.reset_defaults()


def test_json_output_is_one_line_per_event(capsys) -> None:
    """Log shippers split on newlines: no blank line may sit between two records."""
    from terapi_common.logging import flush

    setup("test", level="info", fmt="json")
    log = structlog.get_logger()
    log.info("first", connection_id="c1")
    log.warning("second")
    flush()
    output = capsys.readouterr().err
    assert output.endswith("\n")
    assert [json.loads(line)["event"] for line in output.split("\n")[:-1]] == ["first", "second"]
    structlog.reset_defaults()


async def test_request_log_shows_the_route_not_a_token_in_the_path(aiohttp_client) -> None:
    from aiohttp import web
    from structlog.testing import capture_logs

    from terapi_common.http import request_log_middleware

    async def view(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[request_log_middleware])
    app.router.add_get("/connect/{token}", view)
    client = await aiohttp_client(app)
    with capture_logs() as logs:
        await client.get("/connect/cst_secret-token-value")
    lines = [entry for entry in logs if entry["event"] == "http.request"]
    assert lines[0]["path"] == "/connect/{token}"
    assert "cst_secret-token-value" not in repr(logs)


async def test_line_logged_soon_keeps_the_request_it_belongs_to(capsys) -> None:
    """A request's line waits for its answer, but still names that request, not whatever
    the process handles next."""
    import asyncio

    from terapi_common.logging import log_soon

    setup("test", level="info", fmt="json")
    structlog.contextvars.bind_contextvars(request_id="req-1")
    log_soon(structlog.get_logger().info, "http.request", method="POST", status=200)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id="req-2")
    assert "http.request" not in capsys.readouterr().err  # not yet: the answer goes first
    await asyncio.sleep(0)
    structlog.contextvars.clear_contextvars()
    from terapi_common.logging import flush

    flush()
    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert (record["event"], record["request_id"], record["method"]) == (
        "http.request", "req-1", "POST")
    structlog.reset_defaults()
