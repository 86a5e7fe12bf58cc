"""The bounded memory cache: LRU eviction by entries and bytes, TTL, and byte accounting."""

from __future__ import annotations

import pytest

from marsserver.core.cache import BoundedMemoryCache, size_of

from .helpers import until


async def test_least_recently_used_entry_goes_first_when_entries_overflow():
    cache = BoundedMemoryCache(max_bytes=10_000, max_entries=2)
    await cache.set("a", b"1")
    await cache.set("b", b"2")
    await cache.get("a")  # "b" is now the least recently used
    await cache.set("c", b"3")

    assert await cache.get("b") is None
    assert (await cache.get("a"), await cache.get("c")) == (b"1", b"3")
    assert len(cache) == 2


async def test_bytes_bound_evicts_until_it_fits_and_counts_exactly():
    cache = BoundedMemoryCache(max_bytes=100, max_entries=1000)
    for key in "abcd":
        await cache.set(key, bytes(30))
    assert cache.nbytes == 90
    await cache.set("e", bytes(50))

    assert cache.nbytes == 80
    assert [await cache.get(k) is not None for k in "abcde"] == [False] * 3 + [True] * 2


async def test_an_entry_larger_than_the_whole_cache_is_not_stored():
    cache = BoundedMemoryCache(max_bytes=10, max_entries=10)
    await cache.set("small", b"x")
    await cache.set("huge", bytes(11))
    assert await cache.get("huge") is None
    assert await cache.get("small") == b"x"


async def test_replacing_and_deleting_keep_the_byte_count_right():
    cache = BoundedMemoryCache(max_bytes=1000, max_entries=10)
    await cache.set("a", bytes(100))
    await cache.set("a", bytes(40))
    assert cache.nbytes == 40
    await cache.delete("a")
    assert (cache.nbytes, len(cache)) == (0, 0)


async def test_entries_expire_after_their_ttl_and_release_their_bytes():
    cache = BoundedMemoryCache(max_bytes=1000, max_entries=10)
    await cache.set("a", bytes(10), ttl=0.05)
    assert await cache.get("a") == bytes(10)
    await until(lambda: len(cache) == 0)
    assert cache.nbytes == 0


async def test_clear_empties_everything():
    cache = BoundedMemoryCache(max_bytes=1000, max_entries=10)
    await cache.set("a", b"1", ttl=60)
    await cache.set("b", b"2")
    await cache.clear()
    assert (len(cache), cache.nbytes) == (0, 0)


def test_values_without_a_size_are_refused():
    with pytest.raises(TypeError):
        size_of(object())


async def test_an_oversized_replacement_drops_the_old_value_too():
    cache = BoundedMemoryCache(max_bytes=10, max_entries=10)
    await cache.set("k", b"old")
    await cache.set("k", bytes(11))
    assert await cache.get("k") is None
    assert cache.nbytes == 0


async def test_operations_that_would_bypass_accounting_are_refused():
    cache = BoundedMemoryCache(max_bytes=10, max_entries=10)
    with pytest.raises(NotImplementedError):
        await cache.increment("n")
    with pytest.raises(NotImplementedError):
        await cache.raw("clear")
