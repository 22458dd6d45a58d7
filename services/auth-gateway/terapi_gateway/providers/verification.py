"""The request that proves API-key or Basic credentials work before they are stored."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from terapi_common.providers import Verification, interpolate
from terapi_gateway.providers.oauth2 import ProviderRequest


def verification_request(
    verification: Verification,
    *,
    auth_mode: str,
    credentials: Mapping[str, Any],
    connection_config: Mapping[str, Any],
) -> ProviderRequest:
    """The provider's check request with the submitted credentials filled in."""
    values = {"connection_config": connection_config, "credentials": credentials}
    url = interpolate(verification.url, **values)
    headers = {name: interpolate(v, **values) for name, v in verification.headers.items()}
    has_authorization = any(name.lower() == "authorization" for name in headers)
    if auth_mode == "BASIC" and not has_authorization:
        pair = f"{credentials.get('username', '')}:{credentials.get('password', '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    return ProviderRequest(verification.method, url, headers)
