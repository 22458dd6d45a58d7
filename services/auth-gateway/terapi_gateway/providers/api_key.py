"""API key: the end user pastes one secret the provider issued."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from terapi_common.events import AuthMode
from terapi_gateway.domain import credentials_payload, required_text


class ApiKeyMode:
    """Stores `{"type": "API_KEY", "api_key"}` for the connection."""

    name: AuthMode = "API_KEY"
    slug = "api-key"
    title = "API key"

    def credentials(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        return credentials_payload(self.name, {"api_key": required_text(fields, "api_key")})
