"""Operator tasks the CLI runs: default environments, an environment's keys, key rotation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
import structlog

from terapi_common.crypto import DecryptionError, KeyRing, connection_aad, integration_aad
from terapi_vault import domain, errors, handlers
from terapi_vault.rotation_store import (
    CONNECTIONS,
    ENVIRONMENTS,
    INTEGRATIONS,
    EncryptedRow,
    EncryptedTable,
)
from terapi_vault.store import PgStore

log = structlog.get_logger("terapi.vault")

REENCRYPTION_BATCH_SIZE = 500


async def ensure_default_environments(pool: asyncpg.Pool, key_ring: KeyRing) -> None:
    """Create `dev` and `prod` when missing (idempotent); the vault's tables must exist
    (`terapi migrate` applies every service's migrations first)."""
    await handlers.create_default_environments(PgStore(pool), key_ring)


async def environment_keys(pool: asyncpg.Pool, key_ring: KeyRing, name: str) -> dict[str, str]:
    """{"environment", "public_key", "secret_key", "webhook_secret"} of environment `name`."""
    store = PgStore(pool)
    environment = await store.environment_by_name(name)
    secrets = await store.environment_secrets(environment.id) if environment else None
    if environment is None or secrets is None:
        raise errors.environment_not_found(name)
    try:
        secret_key = key_ring.decrypt_json(
            secrets.secret_key_encrypted, aad=domain.secret_key_aad(environment.id)
        )
        webhook_secret = key_ring.decrypt_json(
            secrets.webhook_secret_encrypted, aad=domain.webhook_secret_aad(environment.id)
        )
    except DecryptionError:
        raise errors.keys_unreadable(name) from None
    return {
        "environment": environment.name,
        "public_key": environment.public_key,
        "secret_key": secret_key,
        "webhook_secret": webhook_secret,
    }


# ---------------------------------------------------------------- key rotation


class ReencryptionStore(Protocol):
    """Where re-encryption reads ciphertexts and swaps them for new ones."""

    async def encrypted_rows(
        self, table: EncryptedTable, *, after: tuple[Any, ...], limit: int
    ) -> list[EncryptedRow]: ...
    async def swap_ciphertexts(
        self, table: EncryptedTable, row: EncryptedRow, ciphertexts: Sequence[bytes]
    ) -> bool: ...


# The associated data each of a row's ciphertexts is bound to, from the row's key.
AadsOf = Callable[[tuple[Any, ...]], tuple[str, ...]]


def _environment_aads(key: tuple[Any, ...]) -> tuple[str, ...]:
    return domain.secret_key_aad(key[0]), domain.webhook_secret_aad(key[0])


def _integration_aads(key: tuple[Any, ...]) -> tuple[str, ...]:
    return (integration_aad(*key),)


def _connection_aads(key: tuple[Any, ...]) -> tuple[str, ...]:
    return (connection_aad(*key),)


# Every ciphertext the vault keeps, with the associated data that binds each to its row.
# Connect-session and OAuth-flow secrets in the gateway are not here: they expire within
# 30 minutes, so the old key only has to stay listed that long.
ENCRYPTED_TABLES: tuple[tuple[EncryptedTable, AadsOf], ...] = (
    (ENVIRONMENTS, _environment_aads),
    (INTEGRATIONS, _integration_aads),
    (CONNECTIONS, _connection_aads),
)


@dataclass(frozen=True)
class Reencryption:
    """A row's ciphertexts under the active key; unreadable ones stay as they were."""

    ciphertexts: tuple[bytes, ...]
    changed: bool
    unreadable: tuple[str, ...]  # the columns no listed key can decrypt


def plan_reencryption(
    key_ring: KeyRing, row: EncryptedRow, *, columns: Sequence[str], aads: Sequence[str]
) -> Reencryption:
    """What the row's ciphertexts become: each one opened, and re-encrypted if old."""
    new: list[bytes] = []
    unreadable: list[str] = []
    for column, blob, aad in zip(columns, row.ciphertexts, aads, strict=True):
        try:
            new.append(key_ring.reencrypt(blob, aad=aad))
        except DecryptionError:
            new.append(blob)
            unreadable.append(column)
    return Reencryption(tuple(new), tuple(new) != row.ciphertexts, tuple(unreadable))


@dataclass
class Tally:
    """What re-encryption did to one table's rows."""

    rewritten: int = 0
    already_current: int = 0
    unreadable: int = 0

    def count(self, planned: Reencryption, *, swapped: bool) -> None:
        if planned.unreadable:
            self.unreadable += 1
        elif swapped:
            self.rewritten += 1
        else:
            # Also a row replaced or deleted meanwhile: every writer uses the active key.
            self.already_current += 1


async def reencrypt(
    store: ReencryptionStore, key_ring: KeyRing, *, batch_size: int = REENCRYPTION_BATCH_SIZE
) -> dict[str, Tally]:
    """Rewrite every ciphertext made with another key version with the active one.

    Safe while the services run and safe to repeat: a row is only swapped if unchanged
    since it was read, and a second run finds nothing to rewrite."""
    return {
        table.name: await _reencrypt_table(store, key_ring, table, aads, batch_size=batch_size)
        for table, aads in ENCRYPTED_TABLES
    }


async def _reencrypt_table(
    store: ReencryptionStore, key_ring: KeyRing, table: EncryptedTable, aads: AadsOf,
    *, batch_size: int,
) -> Tally:
    tally, after = Tally(), table.start
    while True:
        rows = await store.encrypted_rows(table, after=after, limit=batch_size)
        for row in rows:
            planned = plan_reencryption(key_ring, row, columns=table.columns,
                                        aads=aads(row.key))
            swapped = planned.changed and await store.swap_ciphertexts(
                table, row, planned.ciphertexts)
            tally.count(planned, swapped=swapped)
            for column in planned.unreadable:  # named by its key, never shown
                log.warning("vault.ciphertext_unreadable", table=table.name, column=column,
                            row=dict(zip(table.key, row.key, strict=True)))
        if len(rows) < batch_size:
            return tally
        after = rows[-1].key
