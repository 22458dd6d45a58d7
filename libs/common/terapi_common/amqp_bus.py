"""The `Bus` port on RabbitMQ (aio-pika).

Events: one durable topic exchange, persistent messages, publisher confirms, one
durable queue per handler with a dead-letter queue beside it, manual acks, prefetch.
A handler asking for a retry gets the message republished with its delivery count
raised, so the limit works on classic queues. Commands: a durable queue per command
type, replies to a per-process exclusive queue matched by correlation id.
aio-pika's robust connection keeps the channels and declarations through reconnects;
consumers, and the publishes on a caller's critical path, use aiormq directly
(`amqp_direct`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator, Sequence

import aio_pika
import aiormq
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aiormq import spec
from aiormq.abc import DeliveredMessage

from terapi_common import tracing
from terapi_common.amqp_direct import (
    CHANNEL_GONE,
    AmqpSubscription,
    ack,
    headers_of,
    publish_transient,
    reject,
)
from terapi_common.bus import (
    CommandHandler,
    EventHandler,
    Outcome,
    decode_reply,
    encode_command,
    encode_event,
    encode_reply,
    no_answer,
    request_headers,
    run_command_handler,
    run_event_handler,
)
from terapi_common.errors import ServiceUnavailableError
from terapi_common.events import Command, Event, Reply
from terapi_common.topology import (
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    MAX_DELIVERIES,
    RETRY_DELAYS,
    command_queue,
    dead_letter_queue,
    retry_delay,
    retry_queue,
)

log = structlog.get_logger("terapi.bus")
JSON = "application/json"
DELIVERY_HEADER = "x-terapi-delivery"
# A broker restart or a network cut costs callers 503s until the bus is back: retry soon.
RECONNECT_SECONDS = 1.0


class AmqpBus:
    """Events and request/reply over one robust RabbitMQ connection."""

    def __init__(
        self, url: str, *, prefetch: int = 32, max_deliveries: int = MAX_DELIVERIES,
        rpc_timeout: float = 5.0, retry_delays: tuple[float, ...] = RETRY_DELAYS,
        reconnect_seconds: float = RECONNECT_SECONDS,
    ) -> None:
        self._url = url
        self._prefetch = prefetch
        self._max_deliveries = max_deliveries
        self._retry_delays = retry_delays
        self.rpc_timeout = rpc_timeout
        self._reconnect_seconds = reconnect_seconds
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._rpc_channel: AbstractRobustChannel | None = None
        self._replies: AmqpSubscription | None = None
        self._reply_queue_name = f"terapi.reply.{uuid.uuid4().hex}"
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._subscriptions: list[AmqpSubscription] = []
        self._command_handlers: dict[str, CommandHandler] = {}

    async def connect(self) -> None:
        """Open the connection, declare the shared exchanges and the reply queue."""
        self._connection = await aio_pika.connect_robust(
            self._url, client_properties={"connection_name": "terapi"},
            reconnect_interval=self._reconnect_seconds)
        self._publish_channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await self._publish_channel.declare_exchange(
            EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        await self._publish_channel.declare_exchange(
            DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
        )
        # Requests and replies skip confirms: a lost one surfaces as a timeout anyway.
        self._rpc_channel = await self._robust_channel(publisher_confirms=False)
        await self._rpc_channel.declare_queue(
            self._reply_queue_name, exclusive=True, auto_delete=True
        )
        self._replies = AmqpSubscription(self._rpc_channel, self._reply_queue_name,
                                         self._on_reply, no_ack=True, owns_channel=False)
        await self._replies.start()

    # -- events

    async def publish(self, event: Event) -> None:
        assert self._exchange is not None, "connect() first"
        message = aio_pika.Message(
            encode_event(event),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(event.event_id),
            type=event.type,
            headers=tracing.inject_headers(),
        )
        with _broker_unavailable(f"publishing {event.type}"):
            await self._exchange.publish(message, routing_key=event.type)

    async def publish_many(self, events: Sequence[Event]) -> None:
        await asyncio.gather(*(self.publish(e) for e in events))

    async def subscribe(
        self, queue: str, event_types: Sequence[type[Event]], handler: EventHandler
    ) -> AmqpSubscription:
        channel = await self._declare_event_queue(queue, [t.type for t in event_types])

        async def on_message(message: DeliveredMessage) -> None:
            headers = headers_of(message)
            count = int(headers.get(DELIVERY_HEADER, 1) or 1)
            outcome = await run_event_handler(
                message.body, headers, handler, queue=queue,
                delivery_count=count, max_deliveries=self._max_deliveries,
            )
            await self._settle(message, outcome, queue, count, channel)

        return await self._start(AmqpSubscription(channel, queue, on_message))

    async def subscribe_broadcast(
        self, name: str, event_types: Sequence[type[Event]], handler: EventHandler
    ) -> AmqpSubscription:
        """A queue of this process's own (exclusive, gone with the connection), no acks."""
        channel = await self._robust_channel(publisher_confirms=False)
        queue = await channel.declare_queue(f"{name}.{uuid.uuid4().hex}", exclusive=True,
                                            auto_delete=True)
        exchange = await channel.get_exchange(EVENTS_EXCHANGE, ensure=False)
        for event_type in event_types:
            await queue.bind(exchange, routing_key=event_type.type)

        async def on_message(message: DeliveredMessage) -> None:
            await run_event_handler(message.body, headers_of(message), handler,
                                    queue=name, delivery_count=1, max_deliveries=1)

        return await self._start(AmqpSubscription(channel, queue.name, on_message, no_ack=True))

    async def _robust_channel(self, *, publisher_confirms: bool) -> AbstractRobustChannel:
        assert self._connection is not None, "connect() first"
        channel = await self._connection.channel(publisher_confirms=publisher_confirms)
        assert isinstance(channel, AbstractRobustChannel)
        return channel

    async def _start(self, subscription: AmqpSubscription) -> AmqpSubscription:
        await subscription.start()
        self._subscriptions.append(subscription)
        return subscription

    async def _declare_event_queue(
        self, queue: str, routing_keys: list[str]
    ) -> AbstractRobustChannel:
        channel = await self._robust_channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=self._prefetch)
        dlx = await channel.get_exchange(DEAD_LETTER_EXCHANGE, ensure=False)
        dead = await channel.declare_queue(dead_letter_queue(queue), durable=True)
        await dead.bind(dlx, routing_key=queue)
        declared = await channel.declare_queue(queue, durable=True, arguments={
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": queue,
        })
        exchange = await channel.get_exchange(EVENTS_EXCHANGE, ensure=False)
        for key in routing_keys:
            await declared.bind(exchange, routing_key=key)
        # One waiting queue per delay (a per-queue TTL, so no message waits behind a longer
        # one); expired messages dead-letter back to the queue through the default exchange.
        for delay in set(self._retry_delays):
            await channel.declare_queue(retry_queue(queue, delay), durable=True, arguments={
                "x-message-ttl": round(delay * 1000),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": queue,
            })
        return channel

    async def _settle(
        self, message: DeliveredMessage, outcome: Outcome, queue: str, count: int,
        channel: AbstractChannel,
    ) -> None:
        if outcome is Outcome.ACK:
            await ack(message)
        elif outcome is Outcome.REJECT:
            await reject(message)
        else:
            # Republish with the count raised, confirmed, before acking the original:
            # at worst a crash in between delivers it twice, which handlers tolerate.
            properties = message.header.properties
            retry = aio_pika.Message(
                message.body, content_type=properties.content_type,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=properties.message_id, type=properties.message_type,
                headers={**headers_of(message), DELIVERY_HEADER: count + 1},
            )
            delay = retry_delay(count, self._retry_delays)
            await channel.default_exchange.publish(retry, routing_key=retry_queue(queue, delay))
            await ack(message)

    # -- request/reply

    async def serve(self, command_type: type[Command], handler: CommandHandler) -> AmqpSubscription:
        assert self._connection is not None, "connect() first"
        self._command_handlers[command_type.type] = handler
        channel = await self._robust_channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=self._prefetch * 4)
        queue = command_queue(command_type.type)
        await channel.declare_queue(queue, durable=True)

        async def on_message(message: DeliveredMessage) -> None:
            envelope = await run_command_handler(
                message.body, headers_of(message), self._command_handlers
            )
            asked = message.header.properties
            if asked.reply_to:
                # Not waiting for the write: the caller's timeout covers a lost reply.
                # The reply goes out on the channel the command came on (it is open).
                with contextlib.suppress(*CHANNEL_GONE):
                    await publish_transient(
                        message.channel, encode_reply(envelope), routing_key=asked.reply_to,
                        properties=spec.Basic.Properties(
                            content_type=JSON, correlation_id=asked.correlation_id))
            await ack(message)

        return await self._start(AmqpSubscription(channel, queue, on_message))

    async def request(self, command: Command, *, timeout: float | None = None) -> Reply:
        assert self._rpc_channel is not None, "connect() first"
        limit = timeout or self.rpc_timeout
        properties = spec.Basic.Properties(  # the deadline counts from now
            content_type=JSON, correlation_id=uuid.uuid4().hex, reply_to=self._reply_queue_name,
            expiration=str(max(1, round(limit * 1000))), headers=request_headers(limit))
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[properties.correlation_id] = answer
        try:
            # One limit for the whole call: while the bus reconnects, getting the channel
            # waits for it, and the caller must not wait longer than it asked to.
            async with asyncio.timeout(limit):
                with _broker_unavailable(f"sending {command.type}"):
                    if self._rpc_channel.is_closed:
                        raise aiormq.exceptions.ChannelInvalidStateError("the bus is closed")
                    # Not waiting for the write: a request lost on its way is the timeout.
                    await publish_transient(
                        await self._rpc_channel.get_underlay_channel(), encode_command(command),
                        routing_key=command_queue(command.type), properties=properties)
                body = await answer
        except TimeoutError:
            raise no_answer(command, limit) from None
        finally:
            self._pending.pop(properties.correlation_id, None)
        return decode_reply(command, body)

    async def _on_reply(self, message: DeliveredMessage) -> None:
        waiting = self._pending.get(message.header.properties.correlation_id or "")
        if waiting is not None and not waiting.done():
            waiting.set_result(message.body)

    # -- lifecycle

    async def is_healthy(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def stop_consuming(self) -> None:
        """Cancel every consumer and wait for the messages they hold (graceful stop)."""
        subscriptions, self._subscriptions = self._subscriptions, []
        await asyncio.gather(*(s.stop() for s in subscriptions), return_exceptions=True)

    async def close(self) -> None:
        await self.stop_consuming()
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


@contextlib.contextmanager
def _broker_unavailable(doing: str) -> Iterator[None]:
    """A broker that is down or reconnecting is a 503 for callers, not an internal error."""
    try:
        yield
    except (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError,
            ConnectionError) as exc:
        raise ServiceUnavailableError(
            f"the message broker is unavailable ({doing}): {type(exc).__name__}",
            code="service_unavailable",
        ) from None
