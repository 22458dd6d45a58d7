"""The services the `terapi` command can run, by the name used on the command line."""

from __future__ import annotations

from terapi_common.runtime import ServiceModule


def all_services() -> dict[str, ServiceModule]:
    """Name -> service module, in start-up order (the vault first: others ask it things)."""
    from terapi_gateway import app as gateway
    from terapi_logs import app as logs
    from terapi_refresher import app as refresher
    from terapi_vault import app as vault
    from terapi_webhooks import app as webhooks

    return {
        "vault": vault,
        "gateway": gateway,
        "refresher": refresher,
        "webhooks": webhooks,
        "logs": logs,
    }  # type: ignore[dict-item]  # modules satisfy the protocol structurally


# Services that read or write secrets and so need the key ring.
NEEDS_KEY_RING = frozenset({"vault", "gateway", "refresher"})
