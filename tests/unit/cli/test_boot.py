"""Start-up settings: the key ring an operator configures, staged rotations included."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from terapi_cli.boot import BootError, key_ring_from_settings
from terapi_common.crypto import generate_key
from terapi_common.settings import TerapiSettings

OLD, NEW = generate_key(), generate_key()


def settings(**values) -> TerapiSettings:
    return TerapiSettings(_env_file=None, **values)


def test_highest_version_encrypts_by_default() -> None:
    ring = key_ring_from_settings(settings(encryption_key=SecretStr(f"1:{OLD},2:{NEW}")))
    assert ring is not None and ring.encrypt_json("v", aad="r")[0] == 2


def test_encryption_key_version_keeps_an_older_version_active() -> None:
    ring = key_ring_from_settings(settings(encryption_key=SecretStr(f"1:{OLD},2:{NEW}"),
                                           encryption_key_version=1))
    assert ring is not None and ring.encrypt_json("v", aad="r")[0] == 1


def test_an_active_version_not_in_the_ring_stops_start_up() -> None:
    with pytest.raises(BootError, match="TERAPI_ENCRYPTION_KEY: the active key version 2"):
        key_ring_from_settings(settings(encryption_key=SecretStr(OLD), encryption_key_version=2))
