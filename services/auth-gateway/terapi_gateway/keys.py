"""Typed app keys through which the gateway's views reach their dependencies."""

from __future__ import annotations

from aiohttp import web

from terapi_gateway.handlers import Gateway

GATEWAY = web.AppKey("terapi_gateway.gateway", Gateway)
