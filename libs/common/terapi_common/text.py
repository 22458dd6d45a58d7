"""Text rules PostgreSQL imposes on whatever a service stores."""

from __future__ import annotations

from typing import Any


def without_nul(value: Any) -> Any:
    """`value` with NUL removed from every string in it: PostgreSQL text and jsonb refuse it."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value
