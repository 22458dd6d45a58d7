"""Typed keys for what the vault keeps on the aiohttp app."""

from __future__ import annotations

from aiohttp import web

from terapi_vault.handlers import Vault

VAULT = web.AppKey("terapi_vault.vault", Vault)
