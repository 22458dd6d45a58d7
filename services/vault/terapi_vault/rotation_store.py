"""The vault's encrypted columns as key rotation walks them (all of its SQL lives here).

The read cache is left as it is: a ciphertext it holds still decrypts while its version is
listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True)
class EncryptedTable:
    """A table holding ciphertexts at rest, as key rotation walks it in primary-key order."""

    name: str
    key: tuple[str, ...]  # the primary key's columns
    columns: tuple[str, ...]  # the ciphertext columns
    start: tuple[Any, ...]  # below every key (ids start at 1): where the walk begins
    page: str  # rows after the key ($1..), at most $n of them
    swap: str  # new ciphertexts for a row, only if it still holds those read


@dataclass(frozen=True)
class EncryptedRow:
    """A row's key and its ciphertexts, as read."""

    key: tuple[Any, ...]
    ciphertexts: tuple[bytes, ...]


# A row is rewritten only if it still holds the ciphertexts read (compare-and-swap), so a
# refresh or override meanwhile is never undone. The values do not change, so neither do
# `version` and `updated_at`, and no event is queued.
ENVIRONMENTS = EncryptedTable(
    name="environments", key=("id",),
    columns=("secret_key_encrypted", "webhook_secret_encrypted"), start=(0,),
    page="SELECT id, secret_key_encrypted, webhook_secret_encrypted FROM vault.environments "
         "WHERE id > $1 ORDER BY id LIMIT $2",
    swap="UPDATE vault.environments SET secret_key_encrypted = $2, "
         "webhook_secret_encrypted = $3 WHERE id = $1 AND secret_key_encrypted = $4 "
         "AND webhook_secret_encrypted = $5",
)
INTEGRATIONS = EncryptedTable(
    name="integrations", key=("environment_id", "integration_id"),
    columns=("client_secret_encrypted",), start=(0, ""),
    page="SELECT environment_id, integration_id, client_secret_encrypted "
         "FROM vault.integrations WHERE (environment_id, integration_id) > ($1, $2) "
         "AND client_secret_encrypted IS NOT NULL "
         "ORDER BY environment_id, integration_id LIMIT $3",
    swap="UPDATE vault.integrations SET client_secret_encrypted = $3 "
         "WHERE environment_id = $1 AND integration_id = $2 AND client_secret_encrypted = $4",
)
CONNECTIONS = EncryptedTable(
    name="connections", key=("environment_id", "integration_id", "connection_id"),
    columns=("credentials_encrypted",), start=(0, "", ""),
    page="SELECT environment_id, integration_id, connection_id, credentials_encrypted "
         "FROM vault.connections "
         "WHERE (environment_id, integration_id, connection_id) > ($1, $2, $3) "
         "ORDER BY environment_id, integration_id, connection_id LIMIT $4",
    swap="UPDATE vault.connections SET credentials_encrypted = $4 "
         "WHERE environment_id = $1 AND integration_id = $2 AND connection_id = $3 "
         "AND credentials_encrypted = $5",
)


class PgRotationStore:
    """Pages of ciphertexts and compare-and-swap rewrites, on the `vault` schema."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def encrypted_rows(
        self, table: EncryptedTable, *, after: tuple[Any, ...], limit: int
    ) -> list[EncryptedRow]:
        """Up to `limit` rows of `table` whose key comes after `after`, in key order."""
        width = len(table.key)
        return [
            EncryptedRow(tuple(r)[:width], tuple(bytes(c) for c in tuple(r)[width:]))
            for r in await self._pool.fetch(table.page, *after, limit)
        ]

    async def swap_ciphertexts(
        self, table: EncryptedTable, row: EncryptedRow, ciphertexts: Sequence[bytes]
    ) -> bool:
        """Give the row new ciphertexts if it still holds those read; False if it changed."""
        status = await self._pool.execute(table.swap, *row.key, *ciphertexts, *row.ciphertexts)
        return status == "UPDATE 1"
