"""Webhook rules without I/O: which events notify, retry timing, outcomes, safe URLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from terapi_common.events import (
    AuthFailed,
    ConnectionCreated,
    ConnectionUpdated,
    EndUser,
    ErrorInfo,
    RefreshFailed,
    WebhookAbandoned,
    WebhookDelivered,
    WebhookTargets,
)
from terapi_webhooks import domain
from terapi_webhooks.domain import AttemptResult, Delivery, RetryPolicy

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=5, first_retry_seconds=5, max_retry_seconds=60)
COMMON = {"environment_id": 1, "connection_id": "c1", "integration_id": "github",
          "provider": "github", "auth_mode": "OAUTH2", "environment": "dev"}


def delivery(attempts: int = 0) -> Delivery:
    return Delivery("msg_x", 1, uuid4(), "https://app.example/hook?k=v", {}, attempts)


def targets(*, connections: bool = True, failures: bool = True) -> WebhookTargets:
    return WebhookTargets(
        environment_name="prod", urls=["https://a.example/h", "https://a.example/h"],
        send_new_connection_webhooks=connections, send_auth_failure_webhooks=failures,
    )


def test_refresh_does_not_notify() -> None:
    assert not domain.is_notifying(ConnectionUpdated(**COMMON, operation="refresh"))


def test_refresh_given_up_notifies_as_a_failed_refresh() -> None:
    event = RefreshFailed(**COMMON, end_user=EndUser(id="u1"), attempts=3,
                          error=ErrorInfo(code="invalid_grant", message="token revoked"))
    [planned] = domain.plan_deliveries(event, targets(connections=False), ["msg_a"])
    assert planned.payload == {
        "type": "auth", "operation": "refresh", "success": False, "connection_id": "c1",
        "integration_id": "github", "provider": "github", "auth_mode": "OAUTH2",
        "environment": "prod", "end_user": {"id": "u1", "email": None, "display_name": None},
        "error": {"code": "invalid_grant", "message": "token revoked"},
    }


def test_failure_toggle_off_plans_nothing_for_refresh_failures() -> None:
    event = RefreshFailed(**COMMON, error=ErrorInfo(code="invalid_grant", message="revoked"))
    assert domain.plan_deliveries(event, targets(failures=False), ["msg_a"]) == []


def test_override_notifies() -> None:
    assert domain.is_notifying(ConnectionUpdated(**COMMON, operation="override"))


def test_duplicate_target_urls_get_one_webhook() -> None:
    planned = domain.plan_deliveries(ConnectionCreated(**COMMON), targets(), ["msg_a", "msg_b"])
    assert [(p.webhook_id, p.url) for p in planned] == [("msg_a", "https://a.example/h")]


def test_failure_toggle_off_plans_nothing_for_auth_failures() -> None:
    event = AuthFailed(environment_id=1, integration_id="github", environment="dev",
                       error=ErrorInfo(code="x", message="y"))
    assert domain.plan_deliveries(event, targets(failures=False), ["msg_a"]) == []


def test_connection_toggle_off_still_sends_auth_failures() -> None:
    event = AuthFailed(environment_id=1, integration_id="github", environment="dev",
                       error=ErrorInfo(code="x", message="y"))
    assert len(domain.plan_deliveries(event, targets(connections=False), ["msg_a"])) == 1


def test_webhook_id_is_msg_and_26_base32_characters() -> None:
    webhook_id = domain.webhook_id(bytes(range(16)))
    assert webhook_id.startswith("msg_") and len(webhook_id) == 30
    assert set(webhook_id[4:]) <= set("abcdefghijklmnopqrstuvwxyz234567")


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60)])
def test_backoff_doubles_up_to_the_maximum(attempt: int, ceiling: float) -> None:
    assert domain.retry_delay(attempt, policy=POLICY, rand=1.0) == ceiling


def test_backoff_jitter_spreads_over_the_whole_interval() -> None:
    assert domain.retry_delay(3, policy=POLICY, rand=0.25) == 5.0
    assert domain.retry_delay(3, policy=POLICY, rand=0.0) == 0.0


def test_2xx_is_delivered_and_announced() -> None:
    outcome = domain.decide(delivery(1), AttemptResult(status_code=204), policy=POLICY,
                            now=NOW, rand=0.5)
    assert (outcome.status, outcome.attempts, outcome.delivered_at) == ("delivered", 2, NOW)
    assert isinstance(outcome.event, WebhookDelivered) and outcome.event.attempt == 2


def test_server_error_is_retried_after_the_backoff() -> None:
    outcome = domain.decide(delivery(1), AttemptResult(status_code=500), policy=POLICY,
                            now=NOW, rand=0.5)
    assert outcome.status == "pending" and outcome.attempts == 2
    assert outcome.next_attempt_at == NOW + timedelta(seconds=5)
    assert outcome.event is None


def test_last_failed_attempt_abandons() -> None:
    outcome = domain.decide(delivery(4), AttemptResult(error="could not connect: refused"),
                            policy=POLICY, now=NOW, rand=0.5)
    assert outcome.status == "abandoned" and outcome.attempts == 5
    assert isinstance(outcome.event, WebhookAbandoned)
    assert outcome.event.last_error == "could not connect: refused"


def test_gone_abandons_on_the_first_attempt() -> None:
    outcome = domain.decide(delivery(), AttemptResult(status_code=410), policy=POLICY,
                            now=NOW, rand=0.5)
    assert outcome.status == "abandoned" and outcome.error == "endpoint answered 410 Gone"


def test_refused_target_abandons_at_once() -> None:
    outcome = domain.decide(delivery(), AttemptResult(error="private", refused=True),
                            policy=POLICY, now=NOW, rand=0.5)
    assert outcome.status == "abandoned" and outcome.attempts == 1


def test_events_name_the_url_without_query_or_credentials() -> None:
    assert domain.display_url("https://u:p@app.example:8443/h?token=t#f") == (
        "https://app.example:8443/h"
    )


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "::1", "fd00::1",
     "::ffff:127.0.0.1", "0.0.0.0", "100.64.0.1", "224.0.0.1", "not-an-ip"],
)
def test_non_public_addresses_are_not_public(address: str) -> None:
    assert not domain.is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111"])
def test_public_addresses_are_public(address: str) -> None:
    assert domain.is_public_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a9fe:a9fe",  # NAT64 (RFC 6052) to 169.254.169.254
        "64:ff9b::7f00:1",  # NAT64 to 127.0.0.1
        "64:ff9b:1::a9fe:a9fe",  # local-use NAT64 (RFC 8215), /96 layout
        "64:ff9b:1:a9fe:a9:fe00::",  # local-use NAT64, /48 layout
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a00:5::1",  # 6to4 of 10.0.0.5
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo to client 10.0.0.1
        "::a9fe:a9fe",  # IPv4-compatible (deprecated) 169.254.169.254
    ],
)
def test_ipv6_wrapping_a_private_ipv4_is_not_public(address: str) -> None:
    assert not domain.is_public_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::808:808",  # NAT64 to 8.8.8.8
        "2002:808:808::1",  # 6to4 of 8.8.8.8
        "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo, server 65.54.227.120, client 8.8.8.8
    ],
)
def test_ipv6_wrapping_a_public_ipv4_is_public(address: str) -> None:
    assert domain.is_public_address(address)


def test_backoff_of_a_very_late_attempt_is_the_maximum() -> None:
    assert domain.retry_delay(5000, policy=POLICY, rand=1.0) == 60
