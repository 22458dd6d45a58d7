"""structlog set-up: one JSON line per event (pretty on a TTY), secrets masked."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import logging
import re
import sys
from collections.abc import Callable, Mapping, MutableMapping
from functools import lru_cache, partial
from typing import Any

import orjson
import structlog

from terapi_common import tracing

REDACTED = "[redacted]"

# Keys whose values are secret wherever they appear, at any depth.
_SECRET_KEY = re.compile(
    r"(access_?token|refresh_?token|id_?token|client_?secret|password|passwd|api_?key|"
    r"secret_?key|secret|authorization|cookie|code_?verifier|^code$|private_?key|"
    r"credentials|session_?token|connect_session_token|oauth_token_secret|signature)",
    re.IGNORECASE,
)
# Secret-looking values inside free text (URLs with query strings, headers).
_SECRET_IN_TEXT = re.compile(
    r"((?:access_token|refresh_token|client_secret|code|code_verifier|api_key|password|"
    r"connect_session_token|token)=)[^&\s\"']+|(Bearer\s+)[A-Za-z0-9._~+/=-]+",
    re.IGNORECASE,
)


@lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def redact_text(text: str) -> str:
    """Mask `name=value` secrets and bearer tokens inside a string."""
    # Most log values hold neither pattern: skip the regex for them (hot path).
    if "=" not in text and "earer" not in text and "EARER" not in text:
        return text
    return _SECRET_IN_TEXT.sub(lambda m: (m.group(1) or m.group(2)) + REDACTED, text)


def redact(value: Any, key: str = "") -> Any:
    """A copy of `value` with every secret-named field and secret-looking text masked."""
    if key and is_secret_key(key):
        return REDACTED if value not in (None, "", [], {}) else value
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def _render_json(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> bytes:
    return orjson.dumps(event_dict, default=repr)  # the logger ends the line


_STRUCTURAL_KEYS = {"event", "level", "timestamp", "logger"}


def redaction_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the last line of defence against a secret in a log."""
    for key in list(event_dict):
        if key in _STRUCTURAL_KEYS:
            if isinstance(event_dict[key], str):
                event_dict[key] = redact_text(event_dict[key])
            continue
        event_dict[key] = redact(event_dict[key], key)
    return event_dict


def _add_trace_id(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    trace_id = tracing.current_trace_id()
    if trace_id:
        event_dict.setdefault("trace_id", trace_id)
    return event_dict


FLUSH_SECONDS = 0.2


_sinks: list[Any] = []


def log_soon(emit: Callable[..., Any], event: str, /, **fields: Any) -> None:
    """Emit a line on the event loop's next turn, with the context (request id, trace) of
    now: a request's own lines then wait until its answer has been written."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        emit(event, **fields)
        return
    loop.call_soon(partial(emit, event, **fields), context=contextvars.copy_context())


def flush() -> None:
    """Write out buffered log lines (the app flushes every FLUSH_SECONDS, and at exit)."""
    for sink in _sinks:
        with contextlib.suppress(ValueError, OSError):
            sink.flush()


async def flush_periodically() -> None:
    """Run in the event loop, not a thread: a flushing thread would take the GIL away
    from request handling at random moments and show up as latency spikes."""
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        flush()


def _buffered_stderr() -> Any:
    """stderr with a write buffer, flushed by `flush_periodically` and at exit.

    One write syscall per log line costs more than the rest of a request's logging; a
    crash loses at most FLUSH_SECONDS of lines.
    """
    try:
        fileno = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # captured or replaced stderr (tests)
        return sys.stderr.buffer if hasattr(sys.stderr, "buffer") else sys.stderr
    sink = open(fileno, "wb", buffering=256 * 1024, closefd=False)  # noqa: SIM115  # lives as long as the process
    _sinks.append(sink)
    if len(_sinks) == 1:
        atexit.register(flush)
    return sink


class _ServiceName:
    """Stamp the service on every line (context vars are cleared per message)."""

    def __init__(self, service: str) -> None:
        self._service = service

    def __call__(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", self._service)
        return event_dict


def setup(service: str, *, level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog once per process; JSON unless stderr is a terminal."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = _render_json if use_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _ServiceName(service),
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_trace_id,
            structlog.processors.format_exc_info,
            redaction_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=(structlog.BytesLoggerFactory(file=_buffered_stderr()) if use_json
                        else structlog.PrintLoggerFactory(file=sys.stderr)),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s %(message)s")
