"""Standard Webhooks headers, signed by the vault: the signing secret never leaves it."""

from __future__ import annotations

from terapi_common.bus import Bus
from terapi_common.events import SignWebhook, WebhookSignature

USER_AGENT = "Terapi-Webhooks/1"


async def signed_headers(
    bus: Bus, *, environment_id: int, webhook_id: str, timestamp: int, body: str
) -> dict[str, str]:
    """The request headers for one attempt; `body` must be the exact bytes sent, as text."""
    reply = await bus.request(
        SignWebhook(
            environment_id=environment_id, webhook_id=webhook_id, timestamp=timestamp,
            payload=body,
        )
    )
    assert isinstance(reply, WebhookSignature)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": reply.signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
