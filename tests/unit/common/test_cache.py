"""The TTL cache kept of facts other services own."""

from __future__ import annotations

from terapi_common.cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entry_expires_after_its_ttl() -> None:
    clock = Clock()
    cache: TtlCache[str] = TtlCache(ttl=10, monotonic=clock)
    cache.put("env", "targets")
    clock.now += 9.9
    assert cache.get("env") == "targets"
    clock.now += 0.2
    assert cache.get("env") is None


def test_forgotten_entry_is_asked_again() -> None:
    cache: TtlCache[str] = TtlCache(ttl=10)
    cache.put("env", "targets")
    cache.forget("env")
    assert cache.get("env") is None


def test_answer_asked_before_a_change_is_not_kept() -> None:
    """A lookup in flight when the owner announces a change brings back the old value."""
    cache: TtlCache[str] = TtlCache(ttl=10)
    asked_at = cache.epoch
    cache.forget("env")  # the announcement arrives while the question is out
    cache.put("env", "old targets", read_at=asked_at)
    assert cache.get("env") is None
    asked_again = cache.epoch
    cache.put("env", "new targets", read_at=asked_again)
    assert cache.get("env") == "new targets"


def test_full_cache_starts_over_instead_of_growing() -> None:
    cache: TtlCache[int] = TtlCache(ttl=10, max_entries=2)
    for number in range(3):
        cache.put(number, number)
    assert cache.get(0) is None and cache.get(2) == 2
