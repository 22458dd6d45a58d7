"""Each credentials mode reads its own fields into the payload the vault stores."""

from __future__ import annotations

import pytest

from terapi_gateway.errors import MissingCredentialsError
from terapi_gateway.providers import CREDENTIALS_MODES
from terapi_gateway.providers.api_key import ApiKeyMode
from terapi_gateway.providers.basic import BasicMode


def test_modes_have_distinct_names_and_paths() -> None:
    assert len({m.name for m in CREDENTIALS_MODES}) == len(CREDENTIALS_MODES)
    assert len({m.slug for m in CREDENTIALS_MODES}) == len(CREDENTIALS_MODES)


def test_api_key_payload_keeps_the_key_as_sent() -> None:
    assert ApiKeyMode().credentials({"api_key": " k ", "other": 1}) == {
        "type": "API_KEY", "api_key": " k "
    }


def test_api_key_mode_needs_the_key() -> None:
    with pytest.raises(MissingCredentialsError, match="^api_key"):
        ApiKeyMode().credentials({"key": "k"})


def test_basic_payload_has_username_and_password() -> None:
    assert BasicMode().credentials({"username": "u", "password": "p"}) == {
        "type": "BASIC", "username": "u", "password": "p"
    }


def test_basic_mode_needs_a_username() -> None:
    with pytest.raises(MissingCredentialsError, match="^username"):
        BasicMode().credentials({"password": "p"})
