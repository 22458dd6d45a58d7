"""Basic: the end user gives a username and a password (empty for username-only APIs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from terapi_common.events import AuthMode
from terapi_gateway.domain import credentials_payload, optional_text, required_text


class BasicMode:
    """Stores `{"type": "BASIC", "username", "password"}` for the connection."""

    name: AuthMode = "BASIC"
    slug = "basic"
    title = "Basic auth"

    def credentials(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        values = {
            "username": required_text(fields, "username"),
            # Some providers take the key as the username and no password at all.
            "password": optional_text(fields, "password"),
        }
        return credentials_payload(self.name, values)
