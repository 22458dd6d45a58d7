"""One contract, two buses: the in-process bus must behave as RabbitMQ does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from terapi_common.amqp_bus import AmqpBus
from terapi_common.bus import InvalidMessageError, RetryableError, check_deadline
from terapi_common.errors import NotFoundError, ServiceUnavailableError
from terapi_common.events import (
    AuthenticateSecretKey,
    ConnectionCreated,
    ConnectionDeleted,
    EnvironmentIdentity,
)
from terapi_common.memory_bus import MemoryBus
from tests.conftest import FAST_RETRIES, unique


@pytest.fixture(params=["memory", pytest.param("amqp", marks=pytest.mark.integration)])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[MemoryBus | AmqpBus]:
    if request.param == "memory":
        instance: MemoryBus | AmqpBus = MemoryBus(retry_delays=FAST_RETRIES)
    else:
        instance = AmqpBus(request.getfixturevalue("amqp_url"), retry_delays=FAST_RETRIES)
    await instance.connect()
    yield instance
    await instance.close()


def created(connection_id: str = "c1") -> ConnectionCreated:
    return ConnectionCreated(
        environment_id=1, connection_id=connection_id, integration_id="github",
        provider="github", auth_mode="API_KEY", environment="dev",
    )


async def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_event_reaches_handler_subscribed_to_its_type(bus) -> None:
    got: list[ConnectionCreated] = []

    async def handler(event: ConnectionCreated) -> None:
        got.append(event)

    await bus.subscribe(unique("terapi.test.created"), [ConnectionCreated], handler)
    event = created(unique("conn"))
    await bus.publish(event)
    await wait_for(lambda: len(got) == 1)
    assert got[0] == event


async def test_event_skips_handlers_of_other_types(bus) -> None:
    got: list[object] = []

    async def handler(event: object) -> None:
        got.append(event)

    await bus.subscribe(unique("terapi.test.deleted"), [ConnectionDeleted], handler)
    marker: list[object] = []

    async def marker_handler(event: object) -> None:
        marker.append(event)

    await bus.subscribe(unique("terapi.test.marker"), [ConnectionCreated], marker_handler)
    await bus.publish(created())
    await wait_for(lambda: len(marker) == 1)
    assert got == []


async def test_retryable_failure_is_redelivered_later_until_it_succeeds(bus) -> None:
    """Each redelivery waits its delay (longer each time), so a database failover or a
    restarting service has time to come back before the event is given up on."""
    attempts: list[float] = []

    async def flaky(event: ConnectionCreated) -> None:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise RetryableError("database busy")

    await bus.subscribe(unique("terapi.test.flaky"), [ConnectionCreated], flaky)
    await bus.publish(created())
    await wait_for(lambda: len(attempts) == 3)
    gaps = [later - earlier for earlier, later in zip(attempts, attempts[1:], strict=False)]
    assert gaps[0] >= FAST_RETRIES[0] * 0.9 and gaps[1] >= FAST_RETRIES[1] * 0.9, gaps


async def test_invalid_message_is_not_redelivered(bus) -> None:
    attempts: list[int] = []

    async def refuses(event: ConnectionCreated) -> None:
        attempts.append(1)
        raise InvalidMessageError("cannot ever handle this")

    marker: list[object] = []

    async def marker_handler(event: object) -> None:
        marker.append(event)

    await bus.subscribe(unique("terapi.test.refuses"), [ConnectionCreated], refuses)
    await bus.subscribe(unique("terapi.test.marker"), [ConnectionCreated], marker_handler)
    await bus.publish(created())
    await wait_for(lambda: len(marker) == 1 and len(attempts) == 1)
    await asyncio.sleep(0.2)
    assert len(attempts) == 1


async def test_handler_failing_every_time_stops_at_delivery_limit(bus) -> None:
    attempts: list[int] = []

    async def broken(event: ConnectionCreated) -> None:
        attempts.append(1)
        raise RuntimeError("bug")

    await bus.subscribe(unique("terapi.test.broken"), [ConnectionCreated], broken)
    await bus.publish(created())
    await wait_for(lambda: len(attempts) == 5)
    await asyncio.sleep(0.3)
    assert len(attempts) == 5


async def test_stopping_a_subscription_finishes_the_message_in_hand(bus) -> None:
    """A graceful stop: the handler already running completes and its message is acked;
    what arrives afterwards waits in the queue for the next consumer."""
    queue = unique("terapi.test.stopping")
    started, finished, later = asyncio.Event(), [], []

    async def slow(event: ConnectionCreated) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(event.connection_id)

    subscription = await bus.subscribe(queue, [ConnectionCreated], slow)
    await bus.publish(created("in-hand"))
    await asyncio.wait_for(started.wait(), 5)
    await subscription.stop()
    assert finished == ["in-hand"]  # stop returned only once the handler had finished

    await bus.publish(created("after-stop"))

    async def next_consumer(event: ConnectionCreated) -> None:
        later.append(event.connection_id)

    await bus.subscribe(queue, [ConnectionCreated], next_consumer)
    await wait_for(lambda: later == ["after-stop"])
    await asyncio.sleep(0.2)
    assert later == ["after-stop"]  # the finished one was acked, not delivered again


async def test_request_gets_the_served_reply(bus) -> None:
    async def authenticate(command: AuthenticateSecretKey) -> EnvironmentIdentity:
        return EnvironmentIdentity(environment_id=7, environment_name="dev")

    await bus.serve(AuthenticateSecretKey, authenticate)
    reply = await bus.request(AuthenticateSecretKey(key_digest="a" * 64))
    assert reply == EnvironmentIdentity(environment_id=7, environment_name="dev")


async def test_request_and_reply_larger_than_a_frame_arrive_whole(bus) -> None:
    """A message larger than the broker's frame size (128 KiB) travels as several body
    frames, in both directions."""
    from terapi_common.events import ConnectionStored, StoreConnection

    big = "x" * 300_000

    async def store(command: StoreConnection) -> ConnectionStored:
        return ConnectionStored(
            connection_id=command.connection_config["note"], integration_id="github",
            provider="github", auth_mode="API_KEY", environment_name="dev",
            operation="creation")

    await bus.serve(StoreConnection, store)
    reply = await bus.request(StoreConnection(
        environment_id=1, integration_id="github", connection_id="c1", auth_mode="API_KEY",
        sealed_credentials="sealed", connection_config={"note": big}))
    assert reply.connection_id == big


async def test_handler_past_its_callers_deadline_is_told_so(bus) -> None:
    """A request carries when its caller stops waiting (less a margin for the reply):
    a handler about to write after that refuses, and the caller still hears why."""
    async def slow(command: AuthenticateSecretKey) -> EnvironmentIdentity:
        await asyncio.sleep(0.9)  # past the deadline (1 s less 0.2), within the timeout
        check_deadline()
        return EnvironmentIdentity(environment_id=7, environment_name="dev")

    await bus.serve(AuthenticateSecretKey, slow)
    with pytest.raises(ServiceUnavailableError) as caught:
        await bus.request(AuthenticateSecretKey(key_digest="c" * 64), timeout=1)
    assert caught.value.code == "request_expired"


async def test_request_raises_the_error_the_server_raised(bus) -> None:
    async def authenticate(command: AuthenticateSecretKey) -> EnvironmentIdentity:
        raise NotFoundError("no such key", code="unknown_secret_key")

    await bus.serve(AuthenticateSecretKey, authenticate)
    with pytest.raises(NotFoundError) as caught:
        await bus.request(AuthenticateSecretKey(key_digest="b" * 64))
    assert caught.value.code == "unknown_secret_key"
    assert caught.value.http_status == 404


async def test_request_without_a_server_times_out_as_unavailable(bus) -> None:
    from terapi_common.events import GetWebhookTargets

    with pytest.raises(ServiceUnavailableError):
        await bus.request(GetWebhookTargets(environment_id=999_999), timeout=0.3)


async def test_broadcast_reaches_every_subscriber(bus) -> None:
    """Each process's cache hears every change, unlike a shared work queue."""
    first: list[object] = []
    second: list[object] = []

    async def one(event: object) -> None:
        first.append(event)

    async def two(event: object) -> None:
        second.append(event)

    name = unique("terapi.test.cache")
    await bus.subscribe_broadcast(name, [ConnectionCreated], one)
    await bus.subscribe_broadcast(name, [ConnectionCreated], two)
    await bus.publish(created(unique("conn")))
    await wait_for(lambda: len(first) == 1 and len(second) == 1)


@pytest.mark.integration
async def test_a_lost_broker_is_unavailable_rather_than_an_internal_error(amqp_url) -> None:
    """Callers (HTTP handlers) turn ServiceUnavailableError into a 503 they can retry."""
    from terapi_common.events import GetWebhookTargets

    bus = AmqpBus(amqp_url)
    await bus.connect()
    assert bus._connection is not None
    await bus._connection.close()  # the broker went away under a running service
    try:
        with pytest.raises(ServiceUnavailableError):
            await bus.request(GetWebhookTargets(environment_id=1), timeout=1)
        with pytest.raises(ServiceUnavailableError):
            await bus.publish(created())
    finally:
        await bus.close()


async def served_and_answered(server: AmqpBus, client: AmqpBus, *,
                              environment_id: int) -> AuthenticateSecretKey:
    """Serve a command answering `environment_id`; check one request gets through and
    return the command, to ask again later."""
    async def authenticate(command: AuthenticateSecretKey) -> EnvironmentIdentity:
        return EnvironmentIdentity(environment_id=environment_id, environment_name="dev")

    await server.serve(AuthenticateSecretKey, authenticate)
    ask = AuthenticateSecretKey(key_digest=f"{environment_id:064x}")
    assert (await client.request(ask)).environment_id == environment_id
    return ask


async def answered_again(client: AmqpBus, ask: AuthenticateSecretKey, *,
                         within: float) -> EnvironmentIdentity:
    """Ask until a reply comes back (the bus recovers meanwhile); give up after `within` s."""
    deadline = time.monotonic() + within
    while True:
        try:
            reply = await client.request(ask, timeout=0.5)
            assert isinstance(reply, EnvironmentIdentity)
            return reply
        except ServiceUnavailableError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


@pytest.mark.integration
async def test_everything_flows_again_after_the_broker_drops_the_connection() -> None:
    """A broker restart or a network cut closes every connection. Once the bus has
    reconnected, commands and their replies, events and broadcasts flow again, without
    restarting the service."""
    import subprocess

    from tests.conftest import fresh_vhost

    with fresh_vhost("terapi-reconnect") as url:
        server = AmqpBus(url, retry_delays=FAST_RETRIES, reconnect_seconds=0.2)
        client = AmqpBus(url, retry_delays=FAST_RETRIES, reconnect_seconds=0.2)
        await server.connect()
        await client.connect()
        try:
            events: list[str] = []
            broadcasts: list[str] = []

            async def on_event(event: ConnectionCreated) -> None:
                events.append(event.connection_id)

            async def on_broadcast(event: ConnectionCreated) -> None:
                broadcasts.append(event.connection_id)

            await server.subscribe(unique("terapi.test.durable"), [ConnectionCreated], on_event)
            await server.subscribe_broadcast(unique("terapi.test.cache"), [ConnectionCreated],
                                             on_broadcast)
            ask = await served_and_answered(server, client, environment_id=7)

            vhost = url.rsplit("/", 1)[1]
            await asyncio.to_thread(subprocess.run, [
                "rabbitmqctl", "-q", "close_all_connections", "--vhost", vhost,
                "connection cut by a test"], check=True, timeout=60)

            assert (await answered_again(client, ask, within=15)).environment_id == 7
            await client.publish(created("after-the-cut"))
            await wait_for(lambda: "after-the-cut" in events and "after-the-cut" in broadcasts,
                           timeout=10)
        finally:
            await client.close()
            await server.close()


@pytest.mark.integration
async def test_a_deleted_command_queue_is_declared_again_and_served(amqp_url) -> None:
    """An operator deleting a queue makes the broker cancel its consumer: the bus declares
    the queue again and goes on serving instead of leaving callers to time out."""
    import aio_pika

    from terapi_common.topology import command_queue

    server = AmqpBus(amqp_url, reconnect_seconds=0.2)
    client = AmqpBus(amqp_url, reconnect_seconds=0.2)
    await server.connect()
    await client.connect()
    admin = await aio_pika.connect(amqp_url)
    try:
        ask = await served_and_answered(server, client, environment_id=8)
        channel = await admin.channel()
        await channel.queue_delete(command_queue(AuthenticateSecretKey.type))

        assert (await answered_again(client, ask, within=10)).environment_id == 8
    finally:
        await admin.close()
        await client.close()
        await server.close()


@pytest.mark.integration
async def test_while_the_broker_is_unreachable_calls_fail_fast_then_recover(amqp_url) -> None:
    """During an outage a request or a publish is a prompt 503, not a call that hangs
    until the broker returns; once it is reachable again, requests are answered."""
    from urllib.parse import urlsplit

    from tests.support.tcp_proxy import TcpProxy

    parts = urlsplit(amqp_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    await proxy.start()
    server = AmqpBus(amqp_url)
    client = AmqpBus(parts._replace(netloc=f"guest:guest@127.0.0.1:{proxy.port}").geturl(),
                     reconnect_seconds=0.2)
    await server.connect()
    await client.connect()
    try:
        ask = await served_and_answered(server, client, environment_id=9)

        await proxy.cut()
        await asyncio.sleep(0.3)  # a reconnect attempt has been refused meanwhile
        started = time.monotonic()
        with pytest.raises(ServiceUnavailableError):
            await client.request(ask, timeout=1)
        with pytest.raises(ServiceUnavailableError):
            await client.publish(created())
        assert time.monotonic() - started < 1.5

        await proxy.restore()
        assert (await answered_again(client, ask, within=10)).environment_id == 9
    finally:
        await client.close()
        await server.close()
        await proxy.close()
