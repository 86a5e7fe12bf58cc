"""The bounded memory cache: LRU eviction by entries and bytes, TTL, and byte accounting.

Then aiocache's own API at its edges: exact bounds, what `set`, `delete` and `clear` report,
expiry times, and the operations it refuses (cases mutation testing showed no other test
pinned down; tests/MUTANTS.md)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from aiocache.lock import OptimisticLock, OptimisticLockError

from marsserver.core.cache import BoundedMemoryCache, size_of
from marsserver.sources import Listing, Photo, Query

from .helpers import RoverFeed, until


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


# aiocache's API at its edges ---------------------------------------------------------------

async def test_an_entry_exactly_as_large_as_the_cache_fits_and_stays():
    cache = BoundedMemoryCache(max_bytes=10, max_entries=10)
    assert await cache.set("whole", bytes(10)) is True
    assert await cache.get("whole") == bytes(10)
    assert cache.nbytes == 10


async def test_set_says_so_when_a_value_cannot_be_stored():
    cache = BoundedMemoryCache(max_bytes=10, max_entries=10)
    assert await cache.set("huge", bytes(11)) is False


async def test_delete_says_whether_it_removed_something_and_forgets_the_expiry():
    cache = BoundedMemoryCache(max_bytes=100, max_entries=10)
    await cache.set("k", b"v", ttl=60)
    assert await cache.delete("k") == 1
    assert await cache.delete("k") == 0
    assert cache.expires_in("k") is None


async def test_expires_in_counts_down_from_the_ttl_and_is_none_without_one():
    cache = BoundedMemoryCache(max_bytes=100, max_entries=10)
    await cache.set("timed", b"v", ttl=60)
    await cache.set("forever", b"v")
    remaining = cache.expires_in("timed")
    assert remaining is not None
    assert 0 < remaining <= 60
    assert cache.expires_in("forever") is None
    assert cache.expires_in("absent") is None


async def test_set_many_gives_every_entry_the_ttl():
    cache = BoundedMemoryCache(max_bytes=100, max_entries=10)
    await cache.set_many({"a": b"1", "b": b"2"}, ttl=30)
    for key in "ab":
        remaining = cache.expires_in(key)
        assert remaining is not None
        assert 0 < remaining <= 30


async def test_clear_with_a_namespace_clears_only_that_namespace():
    cache = BoundedMemoryCache(max_bytes=100, max_entries=10)
    for key in ("photo:1", "photo:2", "list:latest"):
        await cache.set(key, b"v")
    assert await cache.clear(namespace="photo:") is True
    assert set(cache.view()) == {"list:latest"}
    assert cache.nbytes == 1


async def test_aiocache_optimistic_locks_still_see_a_concurrent_write():
    cache = BoundedMemoryCache(max_bytes=100, max_entries=10)
    await cache.set("k", b"old")
    async with OptimisticLock(cache, "k") as lock:
        await cache.set("k", b"someone else's")
        with pytest.raises(OptimisticLockError):
            await lock.cas(b"mine")
    assert await cache.get("k") == b"someone else's"


@pytest.mark.parametrize(("call", "message"), [
    (lambda cache: cache.increment("k"), "counters cannot be sized; this cache holds bytes and "
                                         "objects"),
    (lambda cache: cache.raw("get", "k"), "raw access would bypass the size accounting"),
])
async def test_operations_that_would_bypass_the_size_accounting_say_why_they_are_refused(
        call, message):
    cache = BoundedMemoryCache(max_bytes=100, max_entries=10)
    with pytest.raises(NotImplementedError) as raised:
        await call(cache)
    assert str(raised.value) == message


def test_a_value_the_cache_cannot_size_is_refused_naming_its_type():
    with pytest.raises(TypeError) as raised:
        size_of(3.5)
    assert str(raised.value) == "cannot size a float for the cache"


async def test_memory_calls_never_go_through_wait_for(monkeypatch):
    """aiocache wraps every call in `asyncio.wait_for` unless its timeout is 0: a task and
    a timer per lookup, on the path of every cached hit."""
    waited: list[object] = []
    real = asyncio.wait_for
    monkeypatch.setattr(asyncio, "wait_for",
                        lambda *args, **kwargs: waited.append(args) or real(*args, **kwargs))
    cache = BoundedMemoryCache(10**6, 10)
    await cache.set("k", b"v", ttl=60)
    assert await cache.get("k") == b"v"
    assert waited == []


async def test_a_failing_watcher_is_logged_and_the_entry_keeps_its_expiry(caplog):
    """The watcher is called inside aiocache's own `set`: a failure there must not leave the
    replaced entry without its TTL timer."""
    cache = BoundedMemoryCache(10**6, 10)

    def broken(key: str) -> None:
        raise RuntimeError("broken watcher")

    cache.watch(broken)
    await cache.set("k", b"old", ttl=60)
    await cache.set("k", b"new", ttl=60)
    assert cache.peek("k") == b"new"
    assert cache.expires_in("k") is not None
    assert "the cache's watcher failed for k" in caplog.text


# The photo index has a space of its own ----------------------------------------------------

async def test_index_entries_evict_only_each_other():
    cache = BoundedMemoryCache(max_bytes=10_000, max_entries=8, index="photo:")
    await cache.set("wallpaper:a", b"w")
    for n in range(100):
        await cache.set(f"photo:{n}", b"p")
    assert cache.peek("wallpaper:a") == b"w"
    assert sorted(cache.view()) == ["photo:98", "photo:99", "wallpaper:a"]  # a quarter: 2
    assert (len(cache), cache.nbytes) == (3, 3)


async def test_the_index_takes_a_quarter_of_the_entries_and_a_sixteenth_of_the_bytes():
    cache = BoundedMemoryCache(max_bytes=1600, max_entries=8, index="photo:")
    await cache.set("photo:big", bytes(101))  # more than the index's 100 bytes
    for n in range(7):
        await cache.set(f"wallpaper:{n}", bytes(200))
    assert sorted(cache.view()) == [f"wallpaper:{n}" for n in range(7)][-6:]  # 1500 bytes
    await cache.set("photo:a", bytes(60))
    await cache.set("photo:b", bytes(60))
    assert [key for key in cache.view() if key.startswith("photo:")] == ["photo:b"]
    assert cache.nbytes == 6 * 200 + 60


class Crowded(RoverFeed):
    """Twenty photos a sol, each its own."""

    async def photos(self, query: Query) -> Listing:
        listing = await super().photos(query)
        return replace(listing, photos=tuple(
            Photo(id=f"{listing.sol}-{n}", camera="NAV", taken="2024-01-01T00:00:00Z",
                  img_src=f"https://mars.nasa.gov/img/{listing.sol}-{n}.jpg")
            for n in range(20)))


async def test_list_requests_never_push_a_cached_wallpaper_out(app_for, resizes):
    """Each sol's list names its photos in the index: a client walking sols fills the index,
    never the space wallpapers are kept in (the review's cache flush)."""
    source = Crowded()
    client = await app_for(source, cache_entries=40)
    victim = "/wallpaper?photo_number=0&height=64"
    assert (await client.get(victim)).headers["X-Cache"] == "MISS"
    for sol in range(1, 12):
        assert (await client.get(f"/api/photos?sol={sol}")).status == 200
    assert (await client.get(victim)).headers["X-Cache"] == "HIT"
    assert resizes == [64]
