"""Typed app keys of the logs service."""

from __future__ import annotations

from aiohttp import web

from terapi_common.auth import KeyAuthenticator
from terapi_logs.store import PgStore

STORE = web.AppKey("logs.store", PgStore)
AUTHENTICATOR = web.AppKey("logs.authenticator", KeyAuthenticator)
