"""OpenTelemetry set-up and W3C trace context carried in message headers.

The exporter follows the standard `OTEL_TRACES_EXPORTER` setting (`otlp`, `console` or
`none`, the default), with the usual `OTEL_EXPORTER_OTLP_*` variables for its target.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind

_tracer = trace.get_tracer("terapi")
_configured = False


def setup(service: str) -> None:
    """Install a tracer provider named after the service and instrument HTTP and SQL."""
    global _configured
    if _configured:
        return
    _configured = True
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if exporter_name in ("", "none"):
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    name = os.environ.get("OTEL_SERVICE_NAME", f"terapi-{service}")
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if exporter_name == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _instrument_libraries()


def _instrument_libraries() -> None:
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    AioHttpServerInstrumentor().instrument()
    # Outgoing calls to providers: the host and path only (a query may carry a key).
    AioHttpClientInstrumentor().instrument(url_filter=lambda url: str(url.with_query(None)))
    AsyncPGInstrumentor().instrument()


def inject_headers(headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """Headers carrying the current trace context (`traceparent`, `tracestate`)."""
    carrier: dict[str, Any] = dict(headers or {})
    propagate.inject(carrier)
    return carrier


@contextmanager
def consumer_span(name: str, headers: Mapping[str, Any], **attributes: Any) -> Iterator[None]:
    """A consumer span that continues the trace the publisher put in the headers."""
    carrier = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in headers.items()}
    parent = propagate.extract(carrier)
    token = context.attach(parent)
    try:
        with _tracer.start_as_current_span(name, kind=SpanKind.CONSUMER) as span:
            for key, value in attributes.items():
                span.set_attribute(f"terapi.{key}", str(value))
            yield
    finally:
        context.detach(token)


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[None]:
    """An internal span around one operation (`webhooks.deliver`, `vault.store`)."""
    with _tracer.start_as_current_span(name) as current:
        for key, value in attributes.items():
            current.set_attribute(f"terapi.{key}", str(value))
        yield


def current_trace_id() -> str | None:
    """The hex trace id to put in log lines, when a trace is being recorded."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


@contextmanager
def attached(headers: Mapping[str, Any] | None) -> Iterator[None]:
    """Continue a trace saved earlier (an outbox row) while publishing it."""
    if not headers:
        yield
        return
    token = context.attach(propagate.extract({k: str(v) for k, v in headers.items()}))
    try:
        yield
    finally:
        context.detach(token)


# Request attributes the server instrumentation records with the raw path and query, where
# connect session tokens, OAuth codes and states travel.
_RAW_REQUEST_ATTRIBUTES = ("http.target", "url.path", "http.url", "url.full")


def scrub_request_span(route: str) -> None:
    """Replace the current server span's path and query by the route template
    (`/connect/{token}`), as the request log does, before the span is exported."""
    current = trace.get_current_span()
    if not current.is_recording():
        return
    for key in _RAW_REQUEST_ATTRIBUTES:
        current.set_attribute(key, route)
    current.set_attribute("url.query", "")
