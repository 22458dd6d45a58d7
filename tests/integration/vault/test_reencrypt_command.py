"""`terapi keys reencrypt`, run as an operator (or the Job) runs it: a process on the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from terapi_common.crypto import KeyRing, generate_key
from terapi_vault.store import PgStore
from tests.conftest import unique
from tests.integration.vault.rotation import add_connection, ciphertexts, vault_database, write_rows

pytestmark = pytest.mark.integration

OLD_KEY, NEW_KEY = generate_key(), generate_key()


def terapi(tmp_path: Path, database_url: str, key: str | None, *args: str
           ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERAPI_")}
    env |= {"TERAPI_DATABASE_URL": database_url, "TERAPI_HOME": str(tmp_path),
            "TERAPI_LOG_FORMAT": "json"}
    if key is not None:
        env["TERAPI_ENCRYPTION_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "terapi_cli.main", *args], env=env, capture_output=True,
        text=True, timeout=120, check=False,
    )


async def test_json_report_counts_each_table_and_a_second_run_finds_nothing_to_do(
    tmp_path,
) -> None:
    async with vault_database() as (url, pool):
        await write_rows(pool, KeyRing.from_spec(f"1:{OLD_KEY}"), environments=2, connections=3)
        rotated = f"1:{OLD_KEY},2:{NEW_KEY}"

        first = terapi(tmp_path, url, rotated, "keys", "reencrypt", "--json")
        second = terapi(tmp_path, url, rotated, "keys", "reencrypt", "--json")

        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout) == {"key_version": 2, "tables": {
            "environments": {"rewritten": 2, "already_current": 0, "unreadable": 0},
            "integrations": {"rewritten": 1, "already_current": 0, "unreadable": 0},
            "connections": {"rewritten": 3, "already_current": 0, "unreadable": 0},
        }}
        assert second.returncode == 0, second.stderr
        assert {name: t["rewritten"] for name, t in json.loads(second.stdout)["tables"].items()
                } == {"environments": 0, "integrations": 0, "connections": 0}
        assert {blob[0] for blob in (await ciphertexts(pool)).values()} == {2}


async def test_unreadable_row_makes_the_command_fail_without_showing_it(tmp_path) -> None:
    async with vault_database() as (url, pool):
        written = await write_rows(pool, KeyRing.from_spec(f"1:{OLD_KEY}"), connections=1)
        env_id = next(iter(written.credentials))[0]
        stranger = KeyRing.from_spec(f"1:{generate_key()}")
        connection_id = unique("conn")
        await add_connection(PgStore(pool), stranger, (env_id, "api-key", connection_id),
                             {"api_key": "lost"})
        blob = (await ciphertexts(pool))[f"connections:{env_id}:api-key:{connection_id}"]

        done = terapi(tmp_path, url, f"1:{OLD_KEY},2:{NEW_KEY}", "keys", "reencrypt")

        assert done.returncode == 1
        assert done.stdout.splitlines() == [
            "active key version: 2",
            "environments: 2 rewritten, 0 already current, 0 unreadable",
            "integrations: 1 rewritten, 0 already current, 0 unreadable",
            "connections:  1 rewritten, 0 already current, 1 unreadable",
        ]
        assert "1 row(s) could not be decrypted" in done.stderr
        assert connection_id in done.stderr  # the warning names the row...
        assert blob.hex() not in done.stderr + done.stdout  # ...never its ciphertext


async def test_without_the_encryption_key_nothing_runs(tmp_path) -> None:
    async with vault_database() as (url, _):
        done = terapi(tmp_path, url, None, "keys", "reencrypt")
    assert done.returncode == 2
    assert "TERAPI_ENCRYPTION_KEY" in done.stderr
