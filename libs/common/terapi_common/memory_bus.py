"""An in-process bus with the broker's semantics, for `terapi up` and fast tests.

Topic routing, one queue per subscription, ack/requeue/dead-letter with a delivery
limit, bounded concurrency per queue (prefetch) and request/reply all behave as on
RabbitMQ; messages cross as bytes so validation runs exactly as it does there.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from terapi_common import tracing
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
from terapi_common.events import Command, Event, Reply
from terapi_common.topology import (
    MAX_DELIVERIES,
    RETRY_DELAYS,
    command_queue,
    retry_delay,
    topic_matches,
)


@dataclass
class _Delivery:
    body: bytes
    headers: dict[str, Any]
    count: int = 1
    reply_to: asyncio.Future[bytes] | None = None


@dataclass
class _Queue:
    name: str
    patterns: list[str]
    items: asyncio.Queue[_Delivery] = field(default_factory=asyncio.Queue)
    dead: list[_Delivery] = field(default_factory=list)


class _Consumer:
    """Takes deliveries from one queue with at most `prefetch` in hand."""

    def __init__(self, queue: _Queue, work: Any, prefetch: int) -> None:
        self._queue = queue
        self._work = work
        self._slots = asyncio.Semaphore(prefetch)
        self._in_hand: set[asyncio.Task[None]] = set()
        self._loop = asyncio.create_task(self._run(), name=f"consume {queue.name}")

    async def _run(self) -> None:
        while True:
            await self._slots.acquire()
            delivery = await self._queue.items.get()
            task = asyncio.create_task(self._handle(delivery))
            self._in_hand.add(task)
            task.add_done_callback(self._in_hand.discard)

    async def _handle(self, delivery: _Delivery) -> None:
        try:
            await self._work(delivery)
        finally:
            self._slots.release()

    async def stop(self) -> None:
        self._loop.cancel()
        await asyncio.gather(self._loop, return_exceptions=True)
        if self._in_hand:
            await asyncio.gather(*self._in_hand, return_exceptions=True)


class MemoryBus:
    """The `Bus` port inside one process."""

    def __init__(self, *, prefetch: int = 32, max_deliveries: int = MAX_DELIVERIES,
                 retry_delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self._queues: dict[str, _Queue] = {}
        self._consumers: list[_Consumer] = []
        self._prefetch = prefetch
        self._max_deliveries = max_deliveries
        self._retry_delays = retry_delays
        self._command_handlers: dict[str, CommandHandler] = {}
        self.rpc_timeout = 5.0
        self.published: defaultdict[str, int] = defaultdict(int)

    # -- events

    async def publish(self, event: Event) -> None:
        body = encode_event(event)
        headers = tracing.inject_headers({"x-event-type": event.type})
        self.published[event.type] += 1
        for queue in self._queues.values():
            if any(topic_matches(p, event.type) for p in queue.patterns):
                queue.items.put_nowait(_Delivery(body, headers))

    async def publish_many(self, events: Sequence[Event]) -> None:
        for event in events:
            await self.publish(event)

    async def subscribe(
        self, queue: str, event_types: Sequence[type[Event]], handler: EventHandler
    ) -> _Consumer:
        target = self._declare(queue, [t.type for t in event_types])

        async def work(delivery: _Delivery) -> None:
            outcome = await run_event_handler(
                delivery.body,
                delivery.headers,
                handler,
                queue=queue,
                delivery_count=delivery.count,
                max_deliveries=self._max_deliveries,
            )
            if outcome is Outcome.REQUEUE:
                delay = retry_delay(delivery.count, self._retry_delays)
                delivery.count += 1
                asyncio.get_running_loop().call_later(delay, target.items.put_nowait, delivery)
            elif outcome is Outcome.REJECT:
                target.dead.append(delivery)

        return self._consume(target, work)

    async def subscribe_broadcast(
        self, name: str, event_types: Sequence[type[Event]], handler: EventHandler
    ) -> _Consumer:
        return await self.subscribe(f"{name}.{uuid.uuid4().hex}", event_types, handler)

    def dead_letters(self, queue: str) -> list[bytes]:
        """Bodies a queue gave up on, for tests and the operator."""
        return [d.body for d in self._queues[queue].dead] if queue in self._queues else []

    # -- request/reply

    async def serve(self, command_type: type[Command], handler: CommandHandler) -> _Consumer:
        self._command_handlers[command_type.type] = handler
        target = self._declare(command_queue(command_type.type), [])

        async def work(delivery: _Delivery) -> None:
            envelope = await run_command_handler(
                delivery.body, delivery.headers, self._command_handlers
            )
            if delivery.reply_to is not None and not delivery.reply_to.done():
                delivery.reply_to.set_result(encode_reply(envelope))

        return self._consume(target, work)

    async def request(self, command: Command, *, timeout: float | None = None) -> Reply:
        limit = timeout or self.rpc_timeout
        target = self._declare(command_queue(command.type), [])
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        headers = {**request_headers(limit), "correlation_id": uuid.uuid4().hex}
        target.items.put_nowait(_Delivery(encode_command(command), headers, reply_to=answer))
        try:
            body = await asyncio.wait_for(answer, limit)
        except TimeoutError:
            raise no_answer(command, limit) from None
        return decode_reply(command, body)

    # -- lifecycle

    async def connect(self) -> None:
        """Nothing to open: the queues live in this process."""

    async def is_healthy(self) -> bool:
        return True

    async def stop_consuming(self) -> None:
        """Stop every consumer and wait for the messages they hold (graceful stop)."""
        consumers, self._consumers = self._consumers, []
        await asyncio.gather(*(c.stop() for c in consumers), return_exceptions=True)

    async def close(self) -> None:
        await self.stop_consuming()

    def _declare(self, name: str, patterns: list[str]) -> _Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = _Queue(name, patterns)
        else:
            queue.patterns.extend(p for p in patterns if p not in queue.patterns)
        return queue

    def _consume(self, queue: _Queue, work: Any) -> _Consumer:
        consumer = _Consumer(queue, work, self._prefetch)
        self._consumers.append(consumer)
        return consumer
