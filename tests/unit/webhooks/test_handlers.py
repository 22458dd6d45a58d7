"""How the event handler reacts to the vault's answers about webhook targets."""

from __future__ import annotations

import pytest

from terapi_common.bus import InvalidMessageError, RetryableError
from terapi_common.errors import (
    InvalidInputError,
    NotFoundError,
    ServiceUnavailableError,
    TerapiError,
)
from terapi_webhooks.handlers import fetch_targets


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
