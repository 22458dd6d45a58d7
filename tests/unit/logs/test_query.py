"""Query-string parsing and the opaque cursor of the operations list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from terapi_common.errors import InvalidInputError
from terapi_logs.query import Cursor, decode_cursor, encode_cursor, parse_query


def test_cursor_round_trips_the_position_to_the_microsecond() -> None:
    at = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(at, "op/1")) == Cursor(at, "op/1")


def test_cursor_without_a_time_zone_is_invalid() -> None:
    forged = encode_cursor(datetime(2026, 3, 1), "op")  # noqa: DTZ001  # the point of the test
    with pytest.raises(InvalidInputError) as caught:
        decode_cursor(forged)
    assert caught.value.code == "invalid_cursor"


def test_defaults_list_a_hundred_without_filters() -> None:
    query, cursor = parse_query({})
    assert query.limit == 100 and query.status is None and cursor is None


def test_empty_values_count_as_absent() -> None:
    query, _ = parse_query({"status": "", "integration_id": ""})
    assert query.status is None and query.integration_id is None


def test_naive_times_are_read_as_utc() -> None:
    query, _ = parse_query({"since": "2026-03-01T12:00:00"})
    assert query.since == datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_bad_limit_names_the_parameter() -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_query({"limit": "1000"})
    assert caught.value.code == "invalid_request"
    assert caught.value.to_dict()["parameter"] == "limit"


def test_cursor_outside_the_utc_range_is_invalid() -> None:
    forged = encode_cursor(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), "op")
    with pytest.raises(InvalidInputError) as caught:
        decode_cursor(forged)
    assert caught.value.code == "invalid_cursor"


def test_time_outside_the_utc_range_names_the_parameter() -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_query({"until": "9999-12-31T23:59:59-05:00"})
    assert caught.value.to_dict()["parameter"] == "until"
