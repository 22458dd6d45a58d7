"""Fixtures shared by every tier: real servers on 127.0.0.1, unique names per test."""

from __future__ import annotations

import os
import uuid

import pytest

POSTGRES_URL = os.environ.get("TERAPI_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("TERAPI_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def unique(prefix: str) -> str:
    """A name no other test uses, instead of truncating shared tables."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def test_key_ring_spec() -> str:
    from terapi_common.crypto import generate_key

    return generate_key()
