"""How the event handler reacts to the vault's answers about webhook targets."""

from __future__ import annotations

import asyncio

import pytest

from terapi_common.bus import InvalidMessageError, RetryableError
from terapi_common.errors import (
    InvalidInputError,
    NotFoundError,
    ServiceUnavailableError,
    TerapiError,
)
from terapi_common.events import WebhookTargets
from terapi_webhooks.handlers import EnvironmentTargets, fetch_targets


class _RefusingBus:
    """A bus whose every request fails with the given error."""

    def __init__(self, error: TerapiError) -> None:
        self._error = error

    async def request(self, command, **_options):
        raise self._error


async def test_gone_environment_means_no_webhook() -> None:
    bus = _RefusingBus(NotFoundError("gone", code="environment_not_found"))
    assert await fetch_targets(bus, 1) is None


async def test_silent_vault_asks_for_redelivery() -> None:
    with pytest.raises(RetryableError):
        await fetch_targets(_RefusingBus(ServiceUnavailableError("no answer")), 1)


async def test_refused_request_is_dead_lettered() -> None:
    with pytest.raises(InvalidMessageError):
        await fetch_targets(_RefusingBus(InvalidInputError("environment_id: bad")), 1)


class _SlowVault:
    """A bus whose vault answers once `release` is set, with the URLs of when it was asked."""

    def __init__(self) -> None:
        self.asked = 0
        self.urls = ["https://a.example"]
        self.release = asyncio.Event()
        self.first_asked = asyncio.Event()

    async def request(self, command, **_options):
        self.asked += 1
        self.first_asked.set()
        urls = list(self.urls)
        await self.release.wait()
        return WebhookTargets(environment_name="dev", urls=urls,
                              send_new_connection_webhooks=True, send_auth_failure_webhooks=True)


async def test_events_arriving_together_share_one_request_and_later_ones_none() -> None:
    vault = _SlowVault()
    targets = EnvironmentTargets(vault, ttl=10)
    waiting = [asyncio.ensure_future(targets.get(1)) for _ in range(3)]
    await asyncio.sleep(0)
    vault.release.set()
    assert [t.urls for t in await asyncio.gather(*waiting)] == [["https://a.example"]] * 3
    assert (await targets.get(1)).urls == ["https://a.example"]
    assert vault.asked == 1


async def test_event_after_a_change_does_not_join_a_request_sent_before_it() -> None:
    vault = _SlowVault()
    targets = EnvironmentTargets(vault, ttl=10)
    early = asyncio.ensure_future(targets.get(1))
    await vault.first_asked.wait()
    vault.urls = ["https://b.example"]  # the app moves its webhook URL meanwhile
    targets.forget(1)
    late = asyncio.ensure_future(targets.get(1))
    for _ in range(5):
        await asyncio.sleep(0)
    vault.release.set()
    assert (await early).urls == ["https://a.example"]
    assert (await late).urls == ["https://b.example"]
    assert vault.asked == 2
    assert (await targets.get(1)).urls == ["https://b.example"]  # the stale answer not kept
