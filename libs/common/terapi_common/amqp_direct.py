"""The bus's consumers and its critical-path publishes, straight on aiormq.

aio-pika wraps every delivery in an `IncomingMessage` and runs the callback in a second
task; aiormq's `basic_publish` takes a lock, opens a timeout scope and books a delivery
tag for confirms. On a creation's critical path (the gateway's command, the vault's
reply) each of these costs about 0.1 ms on a 2-core machine, where the process has just
woken up with cold caches.

A consumer subscribes on the channel's current underlying channel and leaves the rest
to aio-pika's robust channel, which reopens after a reconnect and declares its queues
again: it then consumes once more from the `reopen_callbacks` hook. When the broker
cancels the consumer (its queue was deleted), it closes the underlying channel so that
the same recovery runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import aiormq
import structlog
from aio_pika.abc import AbstractRobustChannel
from aiormq import spec
from aiormq.abc import ChannelFrame, DeliveredMessage
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

log = structlog.get_logger("terapi.bus")

OnDelivery = Callable[[DeliveredMessage], Awaitable[None]]
# What a closed or closing channel raises when asked to ack, cancel or close.
CHANNEL_GONE = (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError,
                ConnectionError)


class AmqpSubscription:
    """One consumer on one queue; `stop` cancels it and waits for the messages in hand."""

    def __init__(self, channel: AbstractRobustChannel, queue: str, on_delivery: OnDelivery,
                 *, no_ack: bool = False, owns_channel: bool = True) -> None:
        self._channel = channel
        self._queue = queue
        self._on_delivery = on_delivery
        self._no_ack = no_ack
        self._owns_channel = owns_channel
        self._underlay: aiormq.abc.AbstractChannel | None = None
        self._tag: str | None = None
        self._stopped = False
        self._in_hand: set[asyncio.Task[object]] = set()
        self._recovery: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._channel.reopen_callbacks.add(self._on_reopen)
        await self._consume()

    async def _consume(self) -> None:
        underlay = await self._channel.get_underlay_channel()
        consumed = await underlay.basic_consume(self._queue, self._deliver, no_ack=self._no_ack)
        self._underlay, self._tag = underlay, consumed.consumer_tag
        underlay.on_consumer_cancel_callbacks.add(self._on_cancel)

    async def _on_reopen(self, _channel: object) -> None:
        if not self._stopped:
            await self._consume()

    async def _on_cancel(self, frame: spec.Basic.Cancel) -> None:
        underlay = self._underlay
        if self._stopped or frame.consumer_tag != self._tag or underlay is None:
            return
        log.warning("bus.consumer_cancelled", queue=self._queue)
        # The robust channel notices the close, reopens, declares the queue again and
        # calls `_on_reopen`, which consumes afresh. Not awaited here: this runs in the
        # channel's reader, which the close needs in order to finish.
        self._recovery = asyncio.get_running_loop().create_task(_close_quietly(underlay))

    async def _deliver(self, message: DeliveredMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_hand.add(task)
        try:
            await self._on_delivery(message)
        finally:
            if task is not None:
                self._in_hand.discard(task)

    async def stop(self) -> None:
        self._stopped = True
        self._channel.reopen_callbacks.discard(self._on_reopen)
        underlay, tag = self._underlay, self._tag
        if underlay is not None and tag is not None and not underlay.is_closed:
            with contextlib.suppress(*CHANNEL_GONE):
                await underlay.basic_cancel(tag)
        pending = [t for t in self._in_hand if t is not asyncio.current_task()]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if self._owns_channel:
            with contextlib.suppress(*CHANNEL_GONE):
                await self._channel.close()


async def _close_quietly(channel: aiormq.abc.AbstractChannel) -> None:
    with contextlib.suppress(*CHANNEL_GONE):
        await channel.close()


# Settling does not wait for the socket to drain: AMQP never confirms an ack anyway, and
# one lost with its connection means a redelivery, which handlers tolerate.
async def ack(message: DeliveredMessage) -> None:
    await _settle(message, lambda tag: message.channel.basic_ack(tag, wait=False))


async def reject(message: DeliveredMessage) -> None:
    await _settle(message, lambda tag: message.channel.basic_reject(
        tag, requeue=False, wait=False))


async def _settle(message: DeliveredMessage,
                  send: Callable[[int], Awaitable[object]]) -> None:
    """Ack or reject on the channel the message came on. If that channel has closed since,
    the broker has already put the message back for redelivery: nothing is lost."""
    tag = message.delivery_tag
    if tag is None:
        return
    try:
        await send(tag)
    except CHANNEL_GONE:
        log.info("bus.settle_on_closed_channel", routing_key=message.routing_key)


def headers_of(message: DeliveredMessage) -> dict[str, Any]:
    return dict(message.header.properties.headers or {})


# The bytes of a frame around its payload: type, channel, size and the end octet.
_FRAME_OVERHEAD = 8


async def publish_transient(channel: aiormq.abc.AbstractChannel, body: bytes, *,
                            routing_key: str, properties: spec.Basic.Properties) -> None:
    """Hand a message for the default exchange to the connection's writer, unconfirmed.

    For channels without publisher confirms, where nothing waits for the broker: the
    caller's own timeout covers a message lost on the way. The frames go out in one write,
    as aiormq's would, and a full write queue falls back to aiormq's waiting publish.
    """
    if channel.is_closed:  # aiormq refuses too: the caller sees the broker as unavailable
        raise aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} closed")
    frame_max = channel.connection.connection_tune.frame_max or 131072
    chunk = frame_max - _FRAME_OVERHEAD
    frames: list[Any] = [
        spec.Basic.Publish(exchange="", routing_key=routing_key),
        ContentHeader(properties=properties, body_size=len(body)),
        *(ContentBody(body[start:start + chunk]) for start in range(0, len(body), chunk)),
    ]
    try:
        channel.write_queue.put_nowait(ChannelFrame.marshall(
            channel_number=channel.number, frames=frames))
    except asyncio.QueueFull:
        await channel.basic_publish(body, routing_key=routing_key, properties=properties,
                                    wait=False)
