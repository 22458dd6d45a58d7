"""The TTL cache kept of facts other services own."""

from __future__ import annotations

from terapi_common.cache import TtlCache


def test_entry_expires_after_its_ttl() -> None:
    now = [100.0]
    cache: TtlCache[str] = TtlCache(ttl=10, monotonic=lambda: now[0])
    cache.put("env", "targets")
    now[0] += 9.9
    assert cache.get("env") == "targets"
    now[0] += 0.2
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


def test_entries_of_a_changed_owner_are_dropped_and_answers_in_flight_not_kept() -> None:
    cache: TtlCache[tuple[int, str]] = TtlCache(ttl=10)
    cache.put("sk-a", (1, "dev"))
    cache.put("pk-a", (1, "dev"))
    cache.put("sk-b", (2, "prod"))
    asked_at = cache.epoch
    cache.forget_where(lambda identity: identity[0] == 1)
    assert cache.get("sk-a") is None and cache.get("pk-a") is None
    assert cache.get("sk-b") == (2, "prod")
    cache.put("sk-a", (1, "dev, old settings"), read_at=asked_at)
    assert cache.get("sk-a") is None
