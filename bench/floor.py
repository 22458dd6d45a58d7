"""This machine's own floor for one creation's hops, measured as the benchmark runs.

A connection's creation crosses RabbitMQ twice (the gateway's command, the vault's reply)
and commits once in PostgreSQL. On a virtual machine each hop to a process that was idle
pays a wake-up, and that cost drifts with the host's load from one run to the next; these
figures, taken with the same spacing as the measured calls, say what the hops alone cost.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

import aio_pika
import asyncpg


async def _timed(call, count: int, gap: float) -> float:
    timings = []
    for _ in range(count + 5):
        await asyncio.sleep(gap)
        started = time.perf_counter()
        await call()
        timings.append((time.perf_counter() - started) * 1000)
    return round(statistics.fmean(timings[5:]), 3)


async def _rpc_round_trip(amqp_url: str, count: int, gap: float) -> float:
    """A bare request and reply through the broker, as the bus sends them."""
    server, client = await aio_pika.connect(amqp_url), await aio_pika.connect(amqp_url)
    try:
        serving = await server.channel()
        queue = await serving.declare_queue(f"bench.floor.{uuid.uuid4().hex}", exclusive=True)

        async def answer(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await serving.default_exchange.publish(
                aio_pika.Message(message.body, correlation_id=message.correlation_id),
                routing_key=message.reply_to or "")
            await message.ack()

        await queue.consume(answer)
        asking = await client.channel()
        replies = await asking.declare_queue(exclusive=True, auto_delete=True)
        waiting: dict[str, asyncio.Future[bytes]] = {}

        async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            waiting.pop(message.correlation_id or "").set_result(message.body)

        await replies.consume(on_reply, no_ack=True)

        async def call() -> None:
            correlation_id = uuid.uuid4().hex
            waiting[correlation_id] = asyncio.get_running_loop().create_future()
            await asking.default_exchange.publish(
                aio_pika.Message(b"x" * 600, correlation_id=correlation_id,
                                 reply_to=replies.name), routing_key=queue.name)
            await waiting[correlation_id]

        return await _timed(call, count, gap)
    finally:
        await client.close()
        await server.close()


async def _commit(database_url: str, count: int, gap: float) -> float:
    """One durable single-row insert, committed (a WAL flush), as the vault's write is."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_floor (id serial, body text)")
        result = await _timed(
            lambda: conn.execute("INSERT INTO bench_floor (body) VALUES ($1)", "x" * 300),
            count, gap)
        await conn.execute("DROP TABLE bench_floor")
        return result
    finally:
        await conn.close()


def measure(database_url: str, amqp_url: str, *, count: int = 100, gap: float = 0.05) -> dict:
    async def both() -> dict:
        return {"rabbitmq_round_trip_ms": await _rpc_round_trip(amqp_url, count, gap),
                "postgres_commit_ms": await _commit(database_url, count, gap)}

    return asyncio.run(both())
