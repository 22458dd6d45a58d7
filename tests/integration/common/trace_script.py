"""Run by test_trace_propagation in a process of its own: OpenTelemetry's tracer provider
is global and can be set once, so the other tests keep running without one."""

from __future__ import annotations

import asyncio
import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from terapi_common.amqp_bus import AmqpBus
from terapi_common.events import AuthenticateSecretKey, ConnectionCreated, EnvironmentIdentity


async def main(amqp_url: str, queue: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    bus = AmqpBus(amqp_url)
    await bus.connect()
    handled = asyncio.Event()

    async def authenticate(command: AuthenticateSecretKey) -> EnvironmentIdentity:
        return EnvironmentIdentity(environment_id=1, environment_name="dev")

    async def on_created(event: ConnectionCreated) -> None:
        handled.set()

    await bus.serve(AuthenticateSecretKey, authenticate)
    await bus.subscribe(queue, [ConnectionCreated], on_created)
    with trace.get_tracer("test").start_as_current_span("caller") as caller:
        await bus.request(AuthenticateSecretKey(key_digest="a" * 64))
        await bus.publish(ConnectionCreated(
            environment_id=1, connection_id="traced", integration_id="github",
            provider="github", auth_mode="API_KEY", environment="dev"))
    await asyncio.wait_for(handled.wait(), 10)
    await bus.close()

    context = caller.get_span_context()
    consumed = {span.name: span for span in exporter.get_finished_spans()
                if span.kind == trace.SpanKind.CONSUMER}
    for name in ("rpc.vault.authenticate_secret_key", f"{queue}.consume"):
        span = consumed[name]
        assert span.context.trace_id == context.trace_id, name
        assert span.parent is not None and span.parent.span_id == context.span_id, name
    print("trace crossed the bus")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
