"""Search parameters of the operations list and its opaque keyset cursor."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from terapi_common.errors import InvalidInputError
from terapi_common.http import describe_validation_error

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


class OperationQuery(BaseModel):
    """Filters of `GET /logs/operations`; every one is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    integration_id: str | None = Field(default=None, max_length=255)
    connection_id: str | None = Field(default=None, max_length=255)
    status: Literal["running", "success", "failed"] | None = None
    type: Literal["auth", "refresh", "webhook"] | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=1000)

    @field_validator("integration_id", "connection_id")
    @classmethod
    def _storable_text(cls, value: str | None) -> str | None:
        if value is not None and not is_storable_text(value):
            raise ValueError("must not contain a NUL character")
        return value

    @field_validator("since", "until")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        utc = as_utc(value)
        if utc is None:
            raise ValueError("is out of range once converted to UTC")
        return utc


@dataclass(frozen=True)
class Cursor:
    """Where the previous page ended: its last row's start time and id."""

    started_at: datetime
    id: str


def is_storable_text(text: str) -> bool:
    """PostgreSQL text cannot hold a NUL character."""
    return "\x00" not in text


def as_utc(value: datetime) -> datetime | None:
    """`value` in UTC, or None when that falls outside the years 1 to 9999."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return None


def parse_operation_id(text: str) -> str:
    """The `{operation_id}` of a path; one PostgreSQL cannot hold is a 400."""
    if not is_storable_text(text):
        raise InvalidInputError(
            "operation_id must not contain a NUL character", details={"parameter": "operation_id"}
        )
    return text


def parse_query(params: Mapping[str, str]) -> tuple[OperationQuery, Cursor | None]:
    """Validate the query string; a bad value is a 400 naming the parameter."""
    given = {k: v for k, v in params.items() if v != ""}
    try:
        query = OperationQuery.model_validate(given)
    except ValidationError as exc:
        where = str(exc.errors()[0].get("loc", ("query",))[0])
        raise InvalidInputError(
            describe_validation_error(exc), details={"parameter": where}
        ) from None
    return query, decode_cursor(query.cursor) if query.cursor else None


def encode_cursor(started_at: datetime, operation_id: str) -> str:
    """Opaque to clients: base64 of the row's position in the ordering."""
    raw = orjson.dumps([started_at.isoformat(), operation_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """The position a cursor names, or `invalid_cursor`."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        started_text, operation_id = orjson.loads(raw)
        started_at = datetime.fromisoformat(started_text)
        if started_at.tzinfo is None or not isinstance(operation_id, str):
            raise ValueError("incomplete cursor")
        if as_utc(started_at) is None or not is_storable_text(operation_id):
            raise ValueError("forged cursor")
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise InvalidInputError(
            "cursor is not one this API returned", code="invalid_cursor",
            details={"parameter": "cursor"},
        ) from None
    return Cursor(started_at, operation_id)
