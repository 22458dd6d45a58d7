"""The cookie that ties an OAuth flow to the browser that started it."""

from __future__ import annotations

import re
import secrets

from terapi_gateway.flow import STATE_LIFETIME

COOKIE_NAME = "terapi_flow"
# `__Host-` keeps a sibling subdomain from planting its own value; browsers accept the
# prefix only with `Secure`, so plain-http development uses the bare name.
SECURE_COOKIE_NAME = f"__Host-{COOKIE_NAME}"
COOKIE_MAX_AGE = int(STATE_LIFETIME.total_seconds())
_VALUE = re.compile(r"[A-Za-z0-9_-]{43}")


def is_secure(public_base: str) -> bool:
    """Whether the gateway is served over https, so its cookie can be `Secure`."""
    return public_base.lower().startswith("https://")


def cookie_name(public_base: str) -> str:
    return SECURE_COOKIE_NAME if is_secure(public_base) else COOKIE_NAME


def browser_value(existing: str | None) -> str:
    """The browser's binding value: the one it has (flows in parallel share it), or new."""
    if existing is not None and _VALUE.fullmatch(existing):
        return existing
    return secrets.token_urlsafe(32)
