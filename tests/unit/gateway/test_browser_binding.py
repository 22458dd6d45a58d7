"""The flow cookie's name and value, and the callback's check of it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from terapi_gateway.browser_binding import browser_value, cookie_name
from terapi_gateway.errors import FlowNotStartedHereError
from terapi_gateway.flow import OAuthFlow, check_started_here


def test_https_gateway_uses_the_host_prefixed_name() -> None:
    assert cookie_name("https://terapi.example.com") == "__Host-terapi_flow"


def test_plain_http_gateway_uses_a_bare_name_browsers_accept() -> None:
    """Browsers drop `__Host-` cookies that are not `Secure`, which http cannot be."""
    assert cookie_name("http://127.0.0.1:3003") == "terapi_flow"


def test_a_browser_keeps_its_value_so_parallel_flows_share_it() -> None:
    first = browser_value(None)
    assert browser_value(first) == first


@pytest.mark.parametrize("planted", ["", "short", "x" * 43 + ";", "é" * 43])
def test_a_malformed_value_is_replaced(planted: str) -> None:
    assert browser_value(planted) != planted


def flow(browser_digest: str | None) -> OAuthFlow:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return OAuthFlow(
        id=uuid.uuid4(), environment_id=1, environment_name="dev", integration_id="i",
        connection_id="c", provider="p", auth_mode="OAUTH2", end_user=None,
        connection_config={}, requested_scopes=[], redirect_uri="https://t/cb", origin=None,
        return_url=None, flow_id=None, operation_id="op", started_at=now, expires_at=now,
        browser_digest=browser_digest,
    )


def test_a_digest_under_any_listed_key_passes() -> None:
    check_started_here(flow("old"), ("new", "old"))


@pytest.mark.parametrize(("stored", "sent"), [("a", ("b",)), (None, ("a",)), ("a", ())])
def test_another_browser_is_flow_not_started_here(stored: str | None, sent: tuple) -> None:
    with pytest.raises(FlowNotStartedHereError):
        check_started_here(flow(stored), sent)
