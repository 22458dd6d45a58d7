"""The event vocabulary: round trips through the wire and carries no secrets."""

from __future__ import annotations

import re
import typing

import pytest
from pydantic import BaseModel

from terapi_common.errors import InvalidInputError
from terapi_common.events import (
    COMMAND_TYPES,
    EVENT_TYPES,
    ConnectionCreated,
    EndUser,
    ErrorInfo,
    LogMessage,
    event_from_wire,
)
from terapi_common.topology import topic_matches

SECRET_NAME = re.compile(r"token|secret|password|api_key|key$|credential", re.I)
# Fields that name secrets but hold only digests or sealed (encrypted) values.
ALLOWED = {"key_digest", "sealed_credentials", "sealed_config", "public_key"}


def _field_names(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    seen = seen or set()
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(name)
        for arg in typing.get_args(field.annotation) or (field.annotation,):
            if isinstance(arg, type) and issubclass(arg, BaseModel) and arg not in seen:
                seen.add(arg)
                names |= _field_names(arg, seen)
    return names


@pytest.mark.parametrize("model", [*EVENT_TYPES.values(), *COMMAND_TYPES.values()],
                         ids=lambda m: m.__name__)
def test_no_message_has_a_secret_field(model: type[BaseModel]) -> None:
    suspicious = {n for n in _field_names(model) if SECRET_NAME.search(n)} - ALLOWED
    assert suspicious == set(), f"{model.__name__} carries {suspicious}"


def test_event_survives_the_wire() -> None:
    event = ConnectionCreated(environment_id=3, connection_id="c", integration_id="i",
                              provider="p", auth_mode="API_KEY", environment="dev",
                              end_user=EndUser(id="u"))
    wire = event.to_wire()
    assert wire["type"] == "connection.created" and wire["data"]["connection_id"] == "c"
    assert set(wire) == {"event_id", "type", "version", "occurred_at", "environment_id", "data"}
    assert event_from_wire(wire) == event


def test_unknown_event_type_is_invalid() -> None:
    with pytest.raises(InvalidInputError):
        event_from_wire({"type": "nope.happened", "data": {}})


@pytest.mark.parametrize(("pattern", "key", "expected"), [
    ("connection.created", "connection.created", True),
    ("connection.*", "connection.deleted", True),
    ("connection.*", "connection.a.b", False),
    ("#", "anything.at.all", True),
    ("connection.#", "connection", True),
    ("*.failed", "auth.failed", True),
    ("auth.failed", "auth.failedx", False),
])
def test_topic_patterns_follow_amqp_rules(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected


def test_error_info_replaces_control_characters_but_keeps_tabs_and_newlines() -> None:
    error = ErrorInfo(code="access\x00denied", message="a\x00b\x07c\td\ne\rf")
    assert error.code == "access\ufffddenied"
    assert error.message == "a\ufffdb\ufffdc\td\ne\ufffdf"


def test_log_message_text_replaces_control_characters() -> None:
    assert LogMessage(message="said\x00no\x1f").message == "said\ufffdno\ufffd"
