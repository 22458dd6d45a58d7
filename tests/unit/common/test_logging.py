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
