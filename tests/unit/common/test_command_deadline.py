"""A command whose caller has stopped waiting is not handled."""

from __future__ import annotations

import time

import orjson

from terapi_common.bus import DEADLINE_HEADER, encode_command, run_command_handler
from terapi_common.events import AuthenticateSecretKey, EnvironmentIdentity


def handlers(calls: list[str]):
    async def authenticate(command: AuthenticateSecretKey) -> EnvironmentIdentity:
        calls.append(command.key_digest)
        return EnvironmentIdentity(environment_id=1, environment_name="dev")

    return {AuthenticateSecretKey.type: authenticate}


def body() -> bytes:
    return encode_command(AuthenticateSecretKey(key_digest="a" * 64))


async def test_command_found_past_its_deadline_is_refused_unhandled() -> None:
    calls: list[str] = []
    past = round((time.time() - 1) * 1000)
    envelope = await run_command_handler(body(), {DEADLINE_HEADER: past}, handlers(calls))
    assert calls == []
    assert (envelope.ok, envelope.error["code"]) == (False, "request_expired")


async def test_command_within_its_deadline_or_without_one_is_handled() -> None:
    calls: list[str] = []
    future = round((time.time() + 5) * 1000)
    for headers in ({DEADLINE_HEADER: future}, {}, {DEADLINE_HEADER: "garbled"}):
        envelope = await run_command_handler(body(), headers, handlers(calls))
        assert envelope.ok, orjson.dumps(envelope.model_dump())
    assert len(calls) == 3
