"""OAuth 2 client credentials: the gateway fetches an app-only token server-side."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from terapi_common.events import AuthMode
from terapi_gateway.domain import optional_text
from terapi_gateway.errors import MissingCredentialsError


class ClientCredentialsMode:
    """Reads an optional per-connection client; the token itself is fetched afterwards."""

    name: AuthMode = "OAUTH2_CC"
    slug = "oauth2-cc"
    title = "OAuth 2 client credentials"

    def credentials(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        client_id = optional_text(fields, "client_id").strip()
        client_secret = optional_text(fields, "client_secret")
        if bool(client_id) != bool(client_secret):
            raise MissingCredentialsError(
                f"{'client_secret' if client_id else 'client_id'} is required with the other"
            )
        if not client_id:
            return {}  # the integration's own client is used
        return {"client_id": client_id, "client_secret": client_secret}
