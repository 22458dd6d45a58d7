"""Typed app keys of the webhooks service."""

from __future__ import annotations

from aiohttp import web

from terapi_webhooks.delivery import Dispatcher
from terapi_webhooks.store import PgStore

DISPATCHER = web.AppKey("webhooks.dispatcher", Dispatcher)
STORE = web.AppKey("webhooks.store", PgStore)
