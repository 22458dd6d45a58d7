"""The read cache serves rows briefly and forgets a connection as soon as it changes."""

from __future__ import annotations

from terapi_vault.cache import ConnectionCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rows_are_served_for_at_least_half_the_ttl_and_never_past_it() -> None:
    clock = Clock()
    cache = ConnectionCache(ttl=2.0, monotonic=clock)
    cache.put((1, "alice", None), ["row"])
    clock.now += 0.99
    assert cache.get((1, "alice", None)) == ["row"]
    clock.now += 1.02
    assert cache.get((1, "alice", None)) is None


def test_a_miss_is_not_cached_so_new_connections_show_at_once() -> None:
    cache = ConnectionCache()
    cache.put((1, "bob", None), [])
    assert cache.get((1, "bob", None)) is None and len(cache) == 0


def test_invalidating_a_connection_drops_it_under_every_integration() -> None:
    cache = ConnectionCache()
    cache.put((1, "carol", None), ["a"])
    cache.put((1, "carol", "github"), ["b"])
    cache.put((1, "dave", None), ["c"])
    cache.invalidate(1, "carol")
    assert cache.get((1, "carol", None)) is None
    assert cache.get((1, "carol", "github")) is None
    assert cache.get((1, "dave", None)) == ["c"]


def test_other_environments_keep_their_entries() -> None:
    cache = ConnectionCache()
    cache.put((1, "erin", None), ["a"])
    cache.put((2, "erin", None), ["b"])
    cache.invalidate(1, "erin")
    assert cache.get((2, "erin", None)) == ["b"]
    cache.invalidate_environment(2)
    assert cache.get((2, "erin", None)) is None


def test_least_recently_used_entry_goes_first_when_full() -> None:
    cache = ConnectionCache(max_entries=2)
    cache.put((1, "a", None), ["a"])
    cache.put((1, "b", None), ["b"])
    assert cache.get((1, "a", None)) == ["a"]
    cache.put((1, "c", None), ["c"])
    assert cache.get((1, "b", None)) is None
    assert cache.get((1, "a", None)) == ["a"] and cache.get((1, "c", None)) == ["c"]


def test_zero_ttl_disables_caching() -> None:
    cache = ConnectionCache(ttl=0)
    cache.put((1, "a", None), ["a"])
    assert cache.get((1, "a", None)) is None


def test_a_read_that_began_before_a_write_is_not_cached() -> None:
    """The read fetched the row the write then replaced: caching it would serve the old
    credentials (or a deleted connection) for up to the TTL."""
    cache = ConnectionCache()
    began = cache.epoch
    cache.invalidate(1, "carol")  # the write lands while the read is in flight
    cache.put((1, "carol", None), ["old row"], read_at=began)
    assert cache.get((1, "carol", None)) is None
    cache.put((1, "carol", None), ["new row"], read_at=cache.epoch)
    assert cache.get((1, "carol", None)) == ["new row"]
