"""The bus port: publish events, subscribe handlers, request/reply; shared message handling.

Both adapters (`amqp_bus.AmqpBus`, `memory_bus.MemoryBus`) move bytes and call
`run_event_handler` / `run_command_handler`, so decoding, validation, log context,
tracing and outcome rules are written once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from enum import Enum
from typing import Any, Protocol

import asyncpg
import orjson
import structlog
from pydantic import ValidationError

from terapi_common import tracing
from terapi_common.background import Background
from terapi_common.errors import (
    UNSTORABLE_VALUE,
    InvalidInputError,
    ServiceUnavailableError,
    TerapiError,
    error_from_dict,
)
from terapi_common.events import (
    COMMAND_TYPES,
    Command,
    Event,
    Reply,
    ReplyEnvelope,
    event_from_wire,
)

log = structlog.get_logger("terapi.bus")

# When the caller of a command stops waiting for its reply (epoch milliseconds: AMQP
# headers carry floats in single precision), less a margin for the reply's way back.
DEADLINE_HEADER = "x-terapi-deadline"
_deadline: ContextVar[float | None] = ContextVar("terapi_command_deadline", default=None)


def request_headers(timeout: float) -> dict[str, Any]:
    """A request's headers: its trace context and its deadline."""
    margin = min(1.0, timeout / 5)
    return tracing.inject_headers({DEADLINE_HEADER: round((time.time() + timeout - margin) * 1000)})


def check_deadline() -> None:
    """Refuse to go on with a command whose caller has stopped waiting.

    Called right before a write: a caller that timed out has already reported the attempt
    as failed, and a connection stored after that would contradict it (a failure webhook
    and a creation for the same attempt). Relies on the hosts' clocks agreeing to well
    under the margin.
    """
    deadline = _deadline.get()
    if deadline is not None and time.time() > deadline:
        raise ServiceUnavailableError(
            "the caller stopped waiting before this could be done", code="request_expired"
        )


@contextmanager
def command_deadline(deadline: float | None) -> Iterator[None]:
    """Handle a command under `deadline` (epoch seconds; None: no deadline)."""
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


def _deadline_of(headers: Mapping[str, Any]) -> float | None:
    value = headers.get(DEADLINE_HEADER)
    try:
        return int(value) / 1000 if value is not None else None
    except (TypeError, ValueError):
        return None

EventHandler = Callable[[Any], Awaitable[None]]
CommandHandler = Callable[[Any], Awaitable[Reply]]


class InvalidMessageError(Exception):
    """The message can never be handled: dead-letter it, never requeue."""


class RetryableError(Exception):
    """A passing failure: requeue until the delivery limit, then dead-letter."""


class Outcome(Enum):
    ACK = "ack"
    REQUEUE = "requeue"
    REJECT = "reject"  # to the dead-letter queue


class Subscription(Protocol):
    """A running consumer."""

    async def stop(self) -> None:
        """Stop taking messages and wait for the ones in hand."""


class Bus(Protocol):
    """What services need from the message broker."""

    async def publish(self, event: Event) -> None: ...

    async def publish_many(self, events: Sequence[Event]) -> None: ...

    async def subscribe(
        self, queue: str, event_types: Sequence[type[Event]], handler: EventHandler
    ) -> Subscription: ...

    async def subscribe_broadcast(
        self, name: str, event_types: Sequence[type[Event]], handler: EventHandler
    ) -> Subscription:
        """Every process gets its own copy (for in-memory caches); nothing is redelivered."""
        ...

    async def serve(self, command_type: type[Command], handler: CommandHandler) -> Subscription: ...

    async def request(self, command: Command, *, timeout: float | None = None) -> Any: ...

    async def is_healthy(self) -> bool: ...

    async def close(self) -> None: ...


def encode_event(event: Event) -> bytes:
    return orjson.dumps(event.to_wire())


def encode_command(command: Command) -> bytes:
    return orjson.dumps({"type": command.type, "data": command.model_dump(mode="json")})


def encode_reply(envelope: ReplyEnvelope) -> bytes:
    return orjson.dumps(envelope.model_dump(mode="json", exclude_none=True))


def decode_reply(command: Command, body: bytes) -> Reply:
    """Turn a reply body into the command's reply model, or raise the error it carries."""
    envelope = ReplyEnvelope.model_validate(orjson.loads(body))
    if envelope.ok:
        return command.reply_model.model_validate(envelope.reply or {})
    raise error_from_dict(envelope.error or {}, envelope.http_status or 500)


def _context_fields(event: Event) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event_id": str(event.event_id),
        "event_type": event.type,
        "environment_id": event.environment_id,
    }
    for name in ("connection_id", "integration_id", "operation_id"):
        value = getattr(event, name, None)
        if value is not None:
            fields[name] = value
    return fields


async def run_event_handler(
    body: bytes,
    headers: Mapping[str, Any],
    handler: EventHandler,
    *,
    queue: str,
    delivery_count: int,
    max_deliveries: int,
) -> Outcome:
    """Decode, validate, bind log context, trace, call the handler; say what to do next."""
    started = time.perf_counter()
    structlog.contextvars.clear_contextvars()
    try:
        event = event_from_wire(orjson.loads(body))
    except (orjson.JSONDecodeError, ValidationError, InvalidInputError) as exc:
        log.error("message.invalid", queue=queue, reason=type(exc).__name__)
        return Outcome.REJECT
    structlog.contextvars.bind_contextvars(queue=queue, **_context_fields(event))
    with tracing.consumer_span(f"{queue}.consume", headers, event_type=event.type):
        outcome, reason = await _call_event_handler(handler, event, delivery_count, max_deliveries)
    emit = log.info if outcome is Outcome.ACK else log.warning
    emit(
        "message.handled",
        outcome=outcome.value,
        reason=reason,
        delivery=delivery_count,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return outcome


async def _call_event_handler(
    handler: EventHandler, event: Event, delivery_count: int, max_deliveries: int
) -> tuple[Outcome, str | None]:
    try:
        await handler(event)
    except InvalidMessageError as exc:
        return Outcome.REJECT, f"invalid: {exc}"
    except RetryableError as exc:
        reason = f"retryable: {exc}"
    except Exception as exc:  # noqa: BLE001  # any other failure may pass: retry, bounded
        log.exception("handler.failed")
        reason = type(exc).__name__
    else:
        return Outcome.ACK, None
    if delivery_count >= max_deliveries:
        return Outcome.REJECT, f"gave up after {delivery_count} deliveries: {reason}"
    return Outcome.REQUEUE, reason


async def run_command_handler(
    body: bytes, headers: Mapping[str, Any], handlers: Mapping[str, CommandHandler]
) -> ReplyEnvelope:
    """Decode a command, call its handler and wrap the reply or error for the caller."""
    started = time.perf_counter()
    structlog.contextvars.clear_contextvars()
    try:
        raw = orjson.loads(body)
        cls = COMMAND_TYPES[raw["type"]]
        command = cls.model_validate(raw.get("data") or {})
        handler = handlers[cls.type]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        return _error_envelope(InvalidInputError(f"malformed command: {type(exc).__name__}"))
    except ValidationError as exc:
        return _error_envelope(InvalidInputError(_first_validation_error(exc)))
    structlog.contextvars.bind_contextvars(command=cls.type)
    with command_deadline(_deadline_of(headers)), \
            tracing.consumer_span(f"rpc.{cls.type}", headers, command=cls.type):
        envelope = await _call_command_handler(handler, command)
    log.debug(
        "command.handled",
        ok=envelope.ok,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return envelope


async def _call_command_handler(handler: CommandHandler, command: Command) -> ReplyEnvelope:
    try:
        check_deadline()  # waited too long in a queue or a prefetch buffer: nobody listens
        reply = await handler(command)
    except TerapiError as exc:
        return _error_envelope(exc)
    except ValidationError as exc:
        return _error_envelope(InvalidInputError(_first_validation_error(exc)))
    except asyncpg.DataError:
        return _error_envelope(InvalidInputError(UNSTORABLE_VALUE))
    except Exception:  # noqa: BLE001  # the caller gets a bare 500; details stay in our log
        log.exception("command.failed")
        return _error_envelope(TerapiError("internal error"))
    return ReplyEnvelope(ok=True, reply=reply.model_dump(mode="json"))


def _error_envelope(exc: TerapiError) -> ReplyEnvelope:
    return ReplyEnvelope(ok=False, error=exc.to_dict(), http_status=exc.http_status)


def _first_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg', 'invalid')}"


def no_answer(command: Command, timeout: float) -> ServiceUnavailableError:
    return ServiceUnavailableError(
        f"{command.type} got no answer within {timeout:g}s", code="service_unavailable"
    )


PUBLISH_LINGER_SECONDS = 0.002


class BackgroundPublisher:
    """Publishes events off the request path; `drain()` waits for them (graceful stop).

    For events whose loss would cost a log entry at worst (the outcome itself is already
    committed elsewhere): the caller answers without waiting for the broker's confirm, and
    the events wait `linger` seconds so that the answer leaves before the broker and the
    consumers wake up to compete with it for the CPU.
    """

    def __init__(self, bus: Bus, *, linger: float = PUBLISH_LINGER_SECONDS) -> None:
        self._bus = bus
        self._linger = linger
        self._tasks = Background()

    def publish_soon(self, events: Sequence[Event] | Callable[[], Sequence[Event]]) -> None:
        """Publish `events`, or what the callable returns: building them can wait too."""
        self._tasks.spawn(self._publish(events))

    async def _publish(self, events: Sequence[Event] | Callable[[], Sequence[Event]]) -> None:
        built: list[Event] = []
        try:
            if self._linger:
                await asyncio.sleep(self._linger)
            built = list(events() if callable(events) else events)
            await self._bus.publish_many(built)
        except Exception:  # noqa: BLE001  # the outcome stands; only its record is lost
            log.exception("events.not_published", events=[e.type for e in built])

    async def drain(self) -> None:
        await self._tasks.drain()
