"""Private addresses are refused when the deployment does not allow them."""

from __future__ import annotations

import pytest

from terapi_common.events import ConnectionCreated
from terapi_webhooks.keys import STORE
from tests.conftest import unique
from tests.integration.webhooks.conftest import new_environment_id, wait_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"], ids=["ip-literal", "host-name"])
async def test_private_target_is_abandoned_without_a_request(
    start_webhooks, bus, vault, receiver, host
) -> None:
    env = new_environment_id()
    vault.configure(env, [receiver.url.replace("127.0.0.1", host)])
    client = await start_webhooks(ALLOW_PRIVATE_TARGETS="false", MAX_ATTEMPTS="5")
    event = ConnectionCreated(
        environment_id=env, connection_id=unique("conn"), integration_id="github",
        provider="github", auth_mode="API_KEY", environment="dev",
    )
    await bus.publish(event)

    async def abandoned() -> list[dict]:
        rows = await client.app[STORE].for_event(env, event.event_id)
        return [r for r in rows if r["status"] == "abandoned"]

    await wait_for(abandoned)
    row = (await abandoned())[0]
    assert "private address" in row["last_error"] and row["attempts"] == 1
    assert receiver.requests == []
