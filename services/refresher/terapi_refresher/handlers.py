"""Keep the schedule in step with the connections the vault announces."""

from __future__ import annotations

from terapi_common.clock import Clock
from terapi_common.events import ConnectionCreated, ConnectionDeleted, ConnectionUpdated
from terapi_refresher import domain
from terapi_refresher.store import Store


async def on_connection_stored(
    event: ConnectionCreated | ConnectionUpdated, *, store: Store, clock: Clock, consumer: str
) -> None:
    """Schedule the next refresh of credentials that expire; drop it for those that don't."""
    await store.track(
        event, consumer=consumer, integration_id=event.integration_id,
        connection_id=event.connection_id, expires_at=event.expires_at,
        next_refresh_at=domain.next_refresh_at(event.expires_at, now=clock.now()),
    )


async def on_connection_deleted(
    event: ConnectionDeleted, *, store: Store, consumer: str
) -> None:
    """A deleted connection is never refreshed again."""
    await store.forget(
        event, consumer=consumer, integration_id=event.integration_id,
        connection_id=event.connection_id,
    )
