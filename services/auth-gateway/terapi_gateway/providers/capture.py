"""The capture request: connection config read from the provider's API after authorization."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from terapi_common.oauth2 import dotted_get
from terapi_common.providers import CaptureRequest, FieldSpec, interpolate
from terapi_gateway.providers.oauth2 import ProviderRequest


def capture_request(
    capture: CaptureRequest, *, access_token: str, connection_config: Mapping[str, Any]
) -> ProviderRequest:
    """The GET that asks the provider for the values, carrying the new access token."""
    values = {"connection_config": connection_config,
              "credentials": {"access_token": access_token}}
    headers = {"Accept": "application/json"} | {
        name: interpolate(value, **values) for name, value in capture.headers.items()}
    if not any(name.lower() == "authorization" for name in headers):
        headers["Authorization"] = f"Bearer {access_token}"
    return ProviderRequest("GET", interpolate(capture.url, **values), headers)


def read_captured(
    capture: CaptureRequest, specs: Mapping[str, FieldSpec], answer_text: str
) -> tuple[dict[str, str], list[str]]:
    """The values found in the JSON answer, and the fields missing or of the wrong shape."""
    try:
        answer = json.loads(answer_text)
    except ValueError:
        return {}, list(capture.fields)
    found: dict[str, str] = {}
    unusable: list[str] = []
    for name, path in capture.fields.items():
        value = dotted_get(answer, path)
        if isinstance(value, str) and value and specs[name].matches(value):
            found[name] = value
        else:
            unusable.append(name)
    return found, unusable
