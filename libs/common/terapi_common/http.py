"""aiohttp pieces every service shares: JSON in and out, errors, health, request logs."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import orjson
import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from terapi_common import tracing
from terapi_common.errors import (
    UNSTORABLE_VALUE,
    InvalidInputError,
    PayloadTooLargeError,
    TerapiError,
    UnauthorizedError,
)
from terapi_common.logging import log_soon

log = structlog.get_logger("terapi.http")

MAX_BODY_BYTES = 64 * 1024
Model = TypeVar("Model", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


async def read_json(request: web.Request, model: type[Model]) -> Model:
    """Parse the body into `model`; a bad body is a 400 naming the field."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"request body is over {MAX_BODY_BYTES} bytes")
    raw = bytearray()
    # read(n) returns what has arrived so far, not n bytes: a body sent in pieces needs more.
    while chunk := await request.content.read(MAX_BODY_BYTES + 1 - len(raw)):
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLargeError(f"request body is over {MAX_BODY_BYTES} bytes")
    try:
        data = orjson.loads(bytes(raw)) if raw else {}
    except orjson.JSONDecodeError:
        raise InvalidInputError("request body is not valid JSON", code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidInputError("request body must be a JSON object", code="invalid_json")
    return parse_model(model, data)


def parse_model(model: type[Model], data: Any) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    message = first.get("msg", "is invalid")
    if first.get("type") == "missing":
        return f"{where} is required"
    if first.get("type") == "extra_forbidden":
        return f"{where} is not a known field"
    return f"{where}: {message}"


def bearer_token(request: web.Request) -> str:
    """The token of an `Authorization: Bearer …` header, or a 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError(
            "send the environment's secret key as 'Authorization: Bearer <secret_key>'",
            code="missing_secret_key",
        )
    return token.strip()


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every failure as `{"error": {"code", "message"}}`; hide unexpected ones."""
    try:
        return await handler(request)
    except TerapiError as exc:
        return json_response({"error": exc.to_dict()}, status=exc.http_status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_exception_response(exc)
    except asyncpg.DataError:
        # A value PostgreSQL cannot hold (a NUL character, a date out of its range).
        return json_response(error_body("invalid_request", UNSTORABLE_VALUE), status=400)
    except Exception:  # noqa: BLE001  # a bug: log it, tell the client nothing internal
        log.exception("http.unhandled", path=loggable_path(request))
        return json_response(error_body("internal_error", "internal error"), status=500)


def _http_exception_response(exc: web.HTTPException) -> web.Response:
    codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
    code = codes.get(exc.status, "http_error")
    message = exc.reason if exc.status != 404 else "no such endpoint"
    return json_response(error_body(code, message), status=exc.status)


_REQUEST_ID_PREFIX = uuid.uuid4().hex[:12]
_request_counter = itertools.count(1)


def _next_request_id() -> str:
    """Unique per process run without a syscall per request (uuid4 reads urandom)."""
    return f"{_REQUEST_ID_PREFIX}{next(_request_counter):08x}"


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One canonical line per request, with a request id bound for the handler's logs."""
    started = time.perf_counter()
    structlog.contextvars.clear_contextvars()
    request_id = request.headers.get("X-Request-Id") or _next_request_id()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    tracing.scrub_request_span(loggable_path(request))
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    finally:
        if request.path not in ("/healthz", "/readyz"):
            log_soon(
                log.info, "http.request",
                method=request.method,
                path=loggable_path(request),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )


def loggable_path(request: web.Request) -> str:
    """The route template (`/connect/{token}`), so tokens in paths never reach a log."""
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else None
    return canonical or "(unmatched)"


HealthCheck = Callable[[], Awaitable[bool]]


def add_health_routes(app: web.Application, checks: dict[str, HealthCheck]) -> None:
    """`/healthz` says the process is alive; `/readyz` that its dependencies answer."""

    async def healthz(_request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        results: dict[str, bool] = {}
        for name, check in checks.items():
            try:
                results[name] = await check()
            except Exception:  # noqa: BLE001  # a failing check means "not ready", not a crash
                results[name] = False
        ready = all(results.values()) and not app[SHUTTING_DOWN].is_set()
        return json_response(
            {"status": "ready" if ready else "unavailable", "checks": results},
            status=200 if ready else 503,
        )

    app[SHUTTING_DOWN] = ShutdownFlag()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)


class ShutdownFlag:
    """Set when the app starts shutting down, so /readyz turns 503 before consumers stop."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


SHUTTING_DOWN = web.AppKey("shutting_down", ShutdownFlag)
