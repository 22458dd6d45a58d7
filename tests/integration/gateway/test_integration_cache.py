"""The gateway reuses the vault's integration facts briefly and drops them on change."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from terapi_common.events import IntegrationChanged
from terapi_common.memory_bus import MemoryBus
from tests.integration.gateway.conftest import FakeVault

pytestmark = pytest.mark.integration


async def _display_name(client, env, integration: str) -> str:
    response = await client.get(f"/connect/integrations/{integration}",
                                params={"public_key": env.public_key})
    assert response.status == 200, await response.text()
    return (await response.json())["display_name"]


async def test_integration_change_announced_by_the_vault_applies_at_once(
    client, vault: FakeVault, bus: MemoryBus
) -> None:
    env = vault.add_environment()
    integration = vault.add_integration(env, "api-key", "API_KEY", display_name="Old name")
    assert await _display_name(client, env, integration) == "Old name"
    key = (env.id, integration)
    vault.integrations[key] = replace(vault.integrations[key], display_name="New name")
    assert await _display_name(client, env, integration) == "Old name"  # reused, no round trip

    await bus.publish(IntegrationChanged(environment_id=env.id, integration_id=integration,
                                         change="updated"))
    for _ in range(200):
        if await _display_name(client, env, integration) == "New name":
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the change was not picked up")
