"""Signed delivery to a real receiver: payload, signature, retries, giving up, stopping."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from standardwebhooks import Webhook

from terapi_common.errors import TerapiError
from terapi_common.events import (
    AuthFailed,
    ConnectionCreated,
    EndUser,
    ErrorInfo,
    WebhookAbandoned,
    WebhookDelivered,
)
from terapi_webhooks.keys import STORE
from tests.conftest import unique
from tests.integration.webhooks.conftest import new_environment_id, wait_for

pytestmark = pytest.mark.integration


def created(environment_id: int) -> ConnectionCreated:
    return ConnectionCreated(
        environment_id=environment_id, connection_id=unique("conn"), integration_id="github",
        provider="github", auth_mode="OAUTH2", environment="dev",
        end_user=EndUser(id="user-1", email="ada@example.com", display_name="Ada"),
    )


async def rows_of(client, event) -> list[dict]:
    return await client.app[STORE].for_event(event.environment_id, event.event_id)


async def single_row(client, event, status: str) -> dict:
    async def reached() -> bool:
        rows = await rows_of(client, event)
        return len(rows) == 1 and rows[0]["status"] == status

    await wait_for(reached)
    return (await rows_of(client, event))[0]


async def test_delivered_webhook_verifies_with_the_environment_secret(
    start_webhooks, bus, vault, receiver
) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url])
    await start_webhooks()
    await bus.publish(created(env))
    await wait_for(lambda: receiver.requests)
    got = receiver.requests[0]
    Webhook(vault.secret).verify(got.body, got.headers)
    assert got.headers["User-Agent"] == "Terapi-Webhooks/1"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["webhook-id"].startswith("msg_") and len(got.headers["webhook-id"]) == 30


async def test_new_connection_payload_has_exactly_the_contract_fields(
    start_webhooks, bus, vault, receiver
) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url])
    await start_webhooks()
    event = created(env)
    await bus.publish(event)
    await wait_for(lambda: receiver.requests)
    assert orjson.loads(receiver.requests[0].body) == {
        "type": "auth", "operation": "creation", "success": True,
        "connection_id": event.connection_id, "integration_id": "github",
        "provider": "github", "auth_mode": "OAUTH2", "environment": "production",
        "end_user": {"id": "user-1", "email": "ada@example.com", "display_name": "Ada"},
        "error": None,
    }


async def test_auth_failure_payload_carries_the_error(start_webhooks, bus, vault, receiver) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url])
    await start_webhooks()
    await bus.publish(AuthFailed(
        environment_id=env, integration_id="zendesk", environment="dev",
        error=ErrorInfo(code="access_denied", message="the user refused"),
    ))
    await wait_for(lambda: receiver.requests)
    body = orjson.loads(receiver.requests[0].body)
    assert body["success"] is False
    assert body["error"] == {"code": "access_denied", "message": "the user refused"}
    assert body["connection_id"] is None and body["end_user"] is None


async def test_each_target_url_gets_its_own_webhook(start_webhooks, bus, vault, receiver) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url, receiver.url + "?copy=2"])
    await start_webhooks()
    await bus.publish(created(env))
    await wait_for(lambda: len(receiver.requests) == 2)
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert len(ids) == 2


async def test_failing_receiver_gets_the_same_webhook_id_until_it_accepts(
    start_webhooks, bus, vault, receiver
) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url])
    receiver.answers = [500, 503]
    client = await start_webhooks()
    event = created(env)
    await bus.publish(event)
    row = await single_row(client, event, "delivered")
    assert row["attempts"] == 3 and row["last_status_code"] == 200
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    for got in receiver.requests:
        Webhook(vault.secret).verify(got.body, got.headers)


async def test_webhook_is_abandoned_after_the_last_attempt(
    start_webhooks, bus, vault, receiver
) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url])
    receiver.answers = [500] * 10
    client = await start_webhooks(MAX_ATTEMPTS="3")
    event = created(env)
    await bus.publish(event)
    row = await single_row(client, event, "abandoned")
    assert row["attempts"] == 3 and len(receiver.requests) == 3
    assert row["last_error"] == "endpoint answered HTTP 500"


async def test_gone_endpoint_is_abandoned_at_once(start_webhooks, bus, vault, receiver) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url])
    receiver.answers = [410]
    client = await start_webhooks(MAX_ATTEMPTS="5")
    event = created(env)
    await bus.publish(event)
    row = await single_row(client, event, "abandoned")
    assert row["attempts"] == 1 and len(receiver.requests) == 1


async def test_slow_receiver_times_out_and_is_retried(start_webhooks, bus, vault, receiver) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url])
    receiver.delay = 1.0
    client = await start_webhooks(TIMEOUT_SECONDS="0.2", MAX_ATTEMPTS="2")
    event = created(env)
    await bus.publish(event)
    row = await single_row(client, event, "abandoned")
    assert row["last_error"] == "no answer within 0.2s" and row["attempts"] == 2


async def test_unreachable_endpoint_is_retried_then_abandoned(start_webhooks, bus, vault) -> None:
    env = new_environment_id()
    vault.configure(env, ["http://127.0.0.1:9/hook"])  # discard port: nothing listens
    client = await start_webhooks(MAX_ATTEMPTS="2")
    event = created(env)
    await bus.publish(event)
    row = await single_row(client, event, "abandoned")
    assert row["attempts"] == 2 and row["last_error"].startswith("could not connect")


async def test_refused_signature_abandons_without_sending(
    start_webhooks, bus, vault, receiver
) -> None:
    from terapi_common.errors import NotFoundError

    env = new_environment_id()
    vault.configure(env, [receiver.url])
    vault.sign_error = NotFoundError("no such environment", code="environment_not_found")
    client = await start_webhooks()
    event = created(env)
    await bus.publish(event)
    row = await single_row(client, event, "abandoned")
    assert row["last_error"] == "could not sign: environment_not_found"
    assert receiver.requests == []


async def test_delivery_is_announced_without_the_url_query(
    start_webhooks, bus, vault, receiver
) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url + "?token=s3cr3t"])
    seen: list[WebhookDelivered] = []

    async def collect(event: WebhookDelivered) -> None:
        seen.append(event)

    await bus.subscribe(unique("terapi.test.delivered"), [WebhookDelivered], collect)
    await start_webhooks()
    event = created(env)
    await bus.publish(event)
    await wait_for(lambda: seen)
    assert seen[0].url == receiver.url and seen[0].source_event_id == event.event_id
    assert seen[0].attempt == 1 and seen[0].status_code == 200


async def test_abandonment_is_announced(start_webhooks, bus, vault, receiver) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url])
    receiver.answers = [410]
    seen: list[WebhookAbandoned] = []

    async def collect(event: WebhookAbandoned) -> None:
        seen.append(event)

    await bus.subscribe(unique("terapi.test.abandoned"), [WebhookAbandoned], collect)
    await start_webhooks()
    await bus.publish(created(env))
    await wait_for(lambda: seen)
    assert seen[0].attempts == 1 and seen[0].last_error == "endpoint answered 410 Gone"


async def test_stopping_lets_an_attempt_in_flight_finish(
    start_webhooks, bus, vault, receiver, pool
) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url])
    receiver.delay = 0.5
    client = await start_webhooks()
    event = created(env)
    await bus.publish(event)
    await asyncio.wait_for(receiver.arrived.wait(), 5)
    await client.close()
    status = await pool.fetchval(
        "SELECT status FROM webhooks.deliveries WHERE source_event_id = $1", event.event_id
    )
    assert status == "delivered"


async def test_auth_failure_with_a_nul_in_its_message_is_delivered(
    start_webhooks, bus, vault, receiver
) -> None:
    """The message may echo the provider's `error=` parameter, which can hold anything."""
    env = new_environment_id()
    vault.configure(env, [receiver.url])
    await start_webhooks()
    await bus.publish(AuthFailed(
        environment_id=env, integration_id="zendesk", environment="dev",
        error=ErrorInfo(code="access_denied", message="provider said: no\x00way"),
    ))
    await wait_for(lambda: receiver.requests)
    body = orjson.loads(receiver.requests[0].body)
    assert body["error"]["message"] == "provider said: no\ufffdway"


async def test_nul_elsewhere_in_the_payload_is_dropped_rather_than_losing_the_webhook(
    start_webhooks, bus, vault, receiver
) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url])
    await start_webhooks()
    end_user = EndUser(id="user-1", display_name="A\x00da")
    event = created(env).model_copy(update={"end_user": end_user})
    await bus.publish(event)
    await wait_for(lambda: receiver.requests)
    assert orjson.loads(receiver.requests[0].body)["end_user"]["display_name"] == "Ada"


async def test_vault_error_while_signing_is_retried_until_it_signs(
    start_webhooks, bus, vault, receiver
) -> None:
    """A vault-side 500 (a database blip) is transient: the webhook is not given up."""
    env = new_environment_id()
    vault.configure(env, [receiver.url])
    vault.sign_failures = [TerapiError("database blip"), TerapiError("database blip")]
    client = await start_webhooks(MAX_ATTEMPTS="3")
    event = created(env)
    await bus.publish(event)
    row = await single_row(client, event, "delivered")
    assert len(receiver.requests) == 1
    Webhook(vault.secret).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert row["attempts"] == 3


async def test_vault_error_while_signing_gives_up_after_the_last_attempt(
    start_webhooks, bus, vault, receiver
) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url])
    vault.sign_error = TerapiError("database down")
    client = await start_webhooks(MAX_ATTEMPTS="2")
    event = created(env)
    await bus.publish(event)
    row = await single_row(client, event, "abandoned")
    assert row["attempts"] == 2 and row["last_error"] == "could not sign: internal_error"
    assert receiver.requests == []
