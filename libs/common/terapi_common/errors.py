"""The error vocabulary: stable codes that clients switch on, with their HTTP status."""

from __future__ import annotations

from typing import Any

# What PostgreSQL refuses to hold whatever the column: a NUL character, a date out of range.
UNSTORABLE_VALUE = "a value cannot be stored (a NUL character, or a date out of range)"

class TerapiError(Exception):
    """An expected failure with a stable snake_case code and the HTTP status it maps to."""

    code: str = "internal_error"
    http_status: int = 500

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The `{"code", "message", ...}` body clients receive."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update(self.details)
        return body


class InvalidInputError(TerapiError):
    """The request is malformed; the message names the bad field."""

    code = "invalid_request"
    http_status = 400


class UnauthorizedError(TerapiError):
    """Missing or wrong credentials for Terapi itself."""

    code = "unauthorized"
    http_status = 401


class ForbiddenError(TerapiError):
    """Authenticated, but not allowed to do this."""

    code = "forbidden"
    http_status = 403


class NotFoundError(TerapiError):
    """The named resource does not exist in this environment."""

    code = "not_found"
    http_status = 404


class ConflictError(TerapiError):
    """The resource exists already or the state forbids the change."""

    code = "conflict"
    http_status = 409


class PayloadTooLargeError(TerapiError):
    """The request body is over the limit."""

    code = "payload_too_large"
    http_status = 413


class UnprocessableError(TerapiError):
    """Well-formed, but the values cannot be acted on."""

    code = "unprocessable"
    http_status = 422


class ProviderError(TerapiError):
    """The external provider refused or answered badly; keeps its own error fields."""

    code = "provider_error"
    http_status = 502

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        provider_error: str | None = None,
        provider_error_description: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status)
        self.provider_error = provider_error
        self.provider_error_description = provider_error_description


class ServiceUnavailableError(TerapiError):
    """A dependency (another service, the broker, the database) did not answer in time."""

    code = "service_unavailable"
    http_status = 503


_BY_STATUS: dict[int, type[TerapiError]] = {
    400: InvalidInputError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableError,
    502: ProviderError,
    503: ServiceUnavailableError,
}


def error_from_dict(body: dict[str, Any], http_status: int) -> TerapiError:
    """Rebuild an error that crossed the bus, keeping its code and status."""
    cls = _BY_STATUS.get(http_status, TerapiError)
    extra = {k: v for k, v in body.items() if k not in ("code", "message")}
    if cls is ProviderError:
        return ProviderError(
            str(body.get("message", "")), code=str(body.get("code")), http_status=http_status
        )
    return cls(
        str(body.get("message", "")),
        code=str(body.get("code", cls.code)),
        http_status=http_status,
        details=extra,
    )
