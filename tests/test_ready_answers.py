"""Ready answers for cached hits (http/ready_answers.py): sent again only while they are
exactly what the full path would send (headers, X-Cache, metrics), never to conditional
requests, never past a change."""

from __future__ import annotations

import asyncio
import gc
import math
import re
import time
from functools import partial
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request
from multidict import CIMultiDict

from marsserver import Settings, create_app
from marsserver.core.cache import BoundedMemoryCache
from marsserver.core.entries import CachedListing
from marsserver.core.pipeline import NEWEST_KEY, Pipeline
from marsserver.http import handlers
from marsserver.http.handlers import PIPELINE
from marsserver.http.ready_answers import READY_ANSWERS, ReadyAnswers
from marsserver.http.views import Paths, cached_listing
from marsserver.metrics import HitCount
from marsserver.sources import LATEST, Listing, Photo, Query

from .helpers import Clock, Gated, RoverFeed, pipeline_of, raw_get, until
from .stub import IMAGES

WALLPAPER = "/wallpaper?photo_number=1&height=120"


async def answers(client: TestClient, path: str, **headers: str) -> list[tuple[str, ...]]:
    """Status, X-Cache, Cache-Control, ETag and a body digest of three requests in a row."""
    seen = []
    for _ in range(3):
        response = await client.get(path, headers=headers)
        body = await response.read()
        seen.append((str(response.status), response.headers.get("X-Cache", ""),
                     response.headers.get("Cache-Control", ""), response.headers.get("ETag", ""),
                     response.headers.get("Vary", ""), str(hash(body))))
    return seen


async def test_a_ready_answer_is_the_full_paths_answer_marked_hit(demo_client, clock: Clock):
    first, second, third = await answers(demo_client, WALLPAPER)
    assert first[1] == "MISS"
    assert second[1:] == third[1:]
    assert (second[1], second[2:]) == ("HIT", first[2:])
    for path, accept in (("/", "text/html"), ("/", "application/json"), ("/api/photos", "")):
        made, *again = await answers(demo_client, path, Accept=accept)
        assert [a[2:] for a in again] == [made[2:]] * 2, (path, accept)
        assert [a[1] for a in again] == ["HIT", "HIT"]


async def test_max_age_still_counts_down_every_second(demo_client, clock: Clock):
    await demo_client.get(WALLPAPER)
    ages = []
    for _ in range(3):
        response = await demo_client.get(WALLPAPER)
        ages.append(int(re.findall(r"max-age=(\d+)", response.headers["Cache-Control"])[0]))
        clock.now += 1
    assert ages == [300, 299, 298]  # the list (info_ttl 300) runs out before the image


async def test_conditional_requests_always_take_the_full_path(demo_client):
    made = await demo_client.get(WALLPAPER)
    await demo_client.get(WALLPAPER)  # now ready
    etag = made.headers["ETag"]
    assert (await demo_client.get(WALLPAPER, headers={"If-None-Match": etag})).status == 304
    assert (await demo_client.get(WALLPAPER, headers={"If-Match": '"other"'})).status == 412
    assert (await demo_client.get(WALLPAPER, headers={"If-Match": etag})).status == 200


async def test_a_refreshed_list_is_never_answered_with_the_old_one(stub, client_for,
                                                                   clock: Clock):
    client = await client_for(stub.settings(info_ttl=60))
    before = [await (await client.get("/api/photos")).json() for _ in range(2)]
    stub.feed_images = stub.feed_images[:1]
    clock.now += 58.5  # due for its refresh (2 s ahead): the ready answer must step aside
    response = await client.get("/api/photos")
    assert response.headers["X-Cache"] == "HIT"  # still fresh, and the refresh has started
    await until(lambda: not pipeline_of(client).background)
    after = await client.get("/api/photos")
    assert (before[0]["count"], (await after.json())["count"]) == (3, 1)
    assert after.headers["ETag"] != response.headers["ETag"]


async def test_a_stale_list_is_never_a_ready_hit(stub, client_for, clock: Clock):
    stub.fail("feed", 500)
    client = await client_for(stub.settings(info_ttl=60, retries=0, error_ttl=600))
    stub.faults.clear()
    await client.get("/api/photos")
    await client.get("/api/photos")
    stub.fail("feed", 500)
    clock.now += 61
    served = [(await client.get("/api/photos")).headers["X-Cache"] for _ in range(3)]
    assert served == ["STALE"] * 3


async def test_ready_hits_count_as_hits(demo_client):
    for _ in range(5):
        await demo_client.get(WALLPAPER)
    metrics = await (await demo_client.get("/metrics")).text()
    assert 'marsserver_cache_requests_total{cache="wallpaper",result="hit"} 4.0' in metrics
    assert 'marsserver_cache_requests_total{cache="wallpaper",result="miss"} 1.0' in metrics
    assert 'marsserver_cache_requests_total{cache="list",result="hit"} 4.0' in metrics


async def test_an_evicted_wallpaper_is_not_answered_from_memory_kept_elsewhere(demo_client,
                                                                              resizes):
    await demo_client.get(WALLPAPER)
    await demo_client.get(WALLPAPER)
    cache = pipeline_of(demo_client).cache
    wallpaper = next(key for key in cache.view() if key.startswith("wallpaper:"))
    await cache.delete(wallpaper)
    again = await demo_client.get(WALLPAPER)
    assert again.headers["X-Cache"] == "MISS"
    assert resizes == [120, 120]


async def test_routes_that_share_a_body_keep_their_own_headers(demo_client):
    """`/` answering JSON varies on Accept; `/api/photos` does not, though the bytes agree
    (both vary on Accept-Encoding: aiohttp's client takes gzip)."""
    for _ in range(2):
        index = await demo_client.get("/", headers={"Accept": "application/json"})
        api = await demo_client.get("/api/photos", headers={"Accept": "application/json"})
        assert await index.read() == await api.read()
        assert (index.headers.get("Vary"), api.headers.get("Vary")) == (
            "Accept, Accept-Encoding", "Accept-Encoding")


@pytest.mark.parametrize("path", ["/", "/api/photos"])
async def test_a_gzipped_list_is_never_sent_again_to_a_client_without_gzip_nor_the_reverse(
        demo_client, monkeypatch, path):
    """A list's answer depends on Accept-Encoding: its ready answers are kept by that header
    too, and each is sent again only for the same one."""
    ready = spy_on_answers(demo_client, monkeypatch)
    encodings = ("gzip", "gzip", "identity", "identity", "gzip", "", "identity", "gzip")
    sent = []
    for encoding in encodings:
        response = await demo_client.get(path, headers={"Accept-Encoding": encoding})
        sent.append(response.headers.get("Content-Encoding", "plain"))
    assert sent == ["gzip", "gzip", "plain", "plain", "gzip", "plain", "plain", "gzip"]
    assert [answer is not None for answer in ready] == [
        False, True, False, True, True, False, True, True]


async def test_a_ready_wallpaper_is_one_answer_whatever_the_client_decodes(demo_client,
                                                                           monkeypatch):
    """Images are never gzipped: Accept-Encoding is no part of a wallpaper's key."""
    ready = spy_on_answers(demo_client, monkeypatch)
    for encoding in ("gzip", "identity", "", "br"):
        response = await demo_client.get(WALLPAPER, headers={"Accept-Encoding": encoding})
        assert "Content-Encoding" not in response.headers
        assert response.headers["Vary"] == "Accept"  # negotiated: the format, from Accept
    assert [answer is not None for answer in ready] == [False, True, True, True]


async def test_a_failing_look_for_a_ready_answer_is_logged_and_the_full_path_answers(
        demo_client, monkeypatch, caplog):
    await demo_client.get(WALLPAPER)
    made = await demo_client.get(WALLPAPER)
    assert made.headers["X-Cache"] == "HIT"

    def broken(*_: object) -> None:
        raise RuntimeError("broken ready answers")
    monkeypatch.setattr(demo_client.app[READY_ANSWERS], "answer", broken)
    again = await demo_client.get(WALLPAPER)
    assert (again.status, again.headers["ETag"]) == (200, made.headers["ETag"])
    assert again.headers["X-Cache"] == "HIT"  # from the cache, by the full path
    assert "looking up the ready answer for /wallpaper" in caplog.text


def spy_on_answers(client: TestClient, monkeypatch) -> list[object]:
    """What each lookup for a ready answer found (None: the full path answered)."""
    hits, ready = client.app[READY_ANSWERS], []
    real = hits.answer

    def answer(*args):
        ready.append(real(*args))
        return ready[-1]

    monkeypatch.setattr(hits, "answer", answer)
    return ready


async def test_long_accept_headers_are_answered_but_never_remembered(demo_client,
                                                                       monkeypatch):
    """An 8 KiB Accept per memo entry would make the memos large: such requests take the
    full path every time (still HITs of the cache), and leave nothing in either memo."""
    from marsserver.http.handlers import QUERIES
    from marsserver.http.params import MAX_KEPT_ACCEPT

    ready = spy_on_answers(demo_client, monkeypatch)
    for accept in ("image/jpeg", "image/jpeg, " + "x/y;q=0.1, " * (MAX_KEPT_ACCEPT // 11)):
        for _ in range(3):
            response = await demo_client.get(WALLPAPER, headers={"Accept": accept})
            assert response.status == 200
    assert [answer is not None for answer in ready] == [False, True, True, False, False, False]
    assert [accept for _, accept in demo_client.app[QUERIES]] == ["image/jpeg"]


async def test_long_accept_encoding_headers_are_answered_but_never_remembered(demo_client,
                                                                              monkeypatch):
    """A list is kept by Accept-Encoding too, within the same bound as Accept."""
    from marsserver.http.params import MAX_KEPT_ACCEPT

    ready = spy_on_answers(demo_client, monkeypatch)
    for encoding in ("gzip", "gzip, " + "x;q=0.1, " * (MAX_KEPT_ACCEPT // 9)):
        for _ in range(3):
            response = await demo_client.get("/api/photos",
                                             headers={"Accept-Encoding": encoding})
            assert response.headers["Content-Encoding"] == "gzip"
    assert [answer is not None for answer in ready] == [False, True, True, False, False, False]
    assert len(demo_client.app[READY_ANSWERS]) == 1


@pytest.mark.parametrize("target", [
    "http://x" + WALLPAPER,  # an absolute URL: its host and user info are never kept
    # 731 characters of query once decoded (within params.MAX_QUERY), 4,236 as sent
    WALLPAPER + "&note=" + "%C3%A9" * 700,
], ids=["absolute", "long"])
async def test_only_short_origin_form_targets_are_remembered(demo_client, monkeypatch,
                                                            target):
    """Ready answers are keyed by the target as sent, which aiohttp reads up to 64 KiB long
    here. Other targets take the full path every time (a HIT of the cache), and are never
    remembered."""
    from marsserver.http.ready_answers import MAX_KEPT_TARGET

    assert target.startswith("http") or len(target) > MAX_KEPT_TARGET
    ready = spy_on_answers(demo_client, monkeypatch)
    for sent in (WALLPAPER, target):
        for _ in range(3):
            head = (await raw_get(demo_client.server, sent)).partition(b"\r\n\r\n")[0]
            assert head.startswith(b"HTTP/1.1 200 OK"), head
    assert [answer is not None for answer in ready] == [False, True, True, False, False, False]
    assert b"X-Cache: HIT" in head


def _forever(now: float) -> tuple[str, float]:
    """A Cache-Control that never changes."""
    return "max-age=60", 1e12


FOREVER = partial(_forever)


def tables(max_entries: int, max_bytes: int = 10**9,
           cache_entries: int = 100) -> tuple[BoundedMemoryCache, ReadyAnswers]:
    cache, ready = BoundedMemoryCache(10**9, cache_entries), ReadyAnswers(max_entries, max_bytes)
    ready.watch(cache)
    return cache, ready


def found(ready: ReadyAnswers, *targets: str) -> list[bool]:
    """Whether each target has a ready answer."""
    return [ready.answer(make_mocked_request("GET", target)) is not None for target in targets]


async def kept(cache: BoundedMemoryCache, ready: ReadyAnswers, target: str,
               entry_key: str = "k") -> None:
    """Remember a 200 for `target` made from the entry under `entry_key` (stored if new)."""
    if cache.peek(entry_key) is None:
        await cache.set(entry_key, b"entry " + entry_key.encode(), ttl=60)
    # What `remember` reads of a request (make_mocked_request takes milliseconds apiece).
    request = SimpleNamespace(raw_path=target, headers=CIMultiDict())
    ready.remember(request, web.Response(body=cache.peek(entry_key)),  # type: ignore[arg-type]
                   FOREVER, 1e12, ((entry_key, cache.peek(entry_key)),), HitCount())


async def test_a_full_table_drops_the_least_recently_used_answer_only():
    cache, ready = tables(max_entries=3)
    for target in ("/a", "/b", "/c"):
        await kept(cache, ready, target)
    assert found(ready, "/a") == [True]  # /b is now the oldest
    await kept(cache, ready, "/d")
    assert found(ready, "/a", "/b", "/c", "/d") == [True, False, True, True]


async def test_keeping_the_same_answer_again_does_not_crowd_out_the_others():
    cache, ready = tables(max_entries=3)
    await kept(cache, ready, "/quiet")
    for _ in range(20):  # a hot answer kept again every second
        await kept(cache, ready, "/wallpaper?height=600")
    assert len(ready) == 2
    assert found(ready, "/quiet") == [True]


async def test_an_answer_kept_again_keeps_its_clock_and_goes_with_its_entry(caplog):
    """Concurrent requests for one cold wallpaper each keep the same answer: the clock the
    answer shows stays the table's, so forgetting it later (its entry replaced) works."""
    cache, ready = tables(max_entries=100)
    for _ in range(4):
        await kept(cache, ready, "/wallpaper?height=90")
    await kept(cache, ready, "/wallpaper?height=90&download=1")  # the same clock, shared
    await cache.set("k", b"a newer entry", ttl=60)
    assert "watcher failed" not in caplog.text
    assert (len(ready), ready.nbytes) == (0, 0)


async def test_answers_are_bounded_by_the_bytes_their_keys_and_headers_hold():
    cache, ready = tables(max_entries=1000, max_bytes=3 * 1200)
    for n in range(10):
        await kept(cache, ready, f"/wallpaper?n={n}")
    assert 0 < ready.nbytes <= 3 * 1200
    assert len(ready) == 3


async def test_an_answer_goes_with_the_entry_it_was_made_from():
    """Replaced or dropped (evicted, expired, deleted): the answer is forgotten at once, so it
    keeps nothing alive that the cache let go of."""
    cache, ready = tables(max_entries=100, cache_entries=2)
    await kept(cache, ready, "/one", "one")
    await kept(cache, ready, "/two", "two")
    await cache.set("one", b"a newer entry", ttl=60)
    assert len(ready) == 1
    await kept(cache, ready, "/three", "three")  # evicts "two": two entries at most
    assert "two" not in cache.view()
    assert found(ready, "/one", "/two", "/three") == [False, False, True]


async def test_an_answer_made_from_an_entry_already_replaced_is_not_kept():
    cache, ready = tables(max_entries=100)
    await cache.set("k", b"old", ttl=60)
    await cache.set("k", b"new", ttl=60)
    ready.remember(make_mocked_request("GET", "/x"), web.Response(body=b"old"), FOREVER, 1e12,
                   (("k", b"old"),), HitCount())
    assert len(ready) == 0


async def test_a_ready_hit_keeps_its_entries_in_the_cache(demo_client):
    """Answered without the full path's lookups, a hot wallpaper must still count as used in
    the cache's LRU order, or it would be evicted (and made again) while it is hottest."""
    await demo_client.get(WALLPAPER)
    cache = pipeline_of(demo_client).cache
    before = list(cache.view())
    await demo_client.get("/wallpaper?photo_number=0&height=120")  # newer entries after ours
    assert (await demo_client.get(WALLPAPER)).headers["X-Cache"] == "HIT"
    wallpaper = next(key for key in before if key.startswith("wallpaper:") and "120" in key)
    assert list(cache.view())[-1] == wallpaper


async def test_many_distinct_cached_urls_are_all_answered_ready(demo_client, monkeypatch,
                                                             clock: Clock):
    """A real working set is many URLs (photos x sizes x formats), not one."""
    await demo_client.get("/api/photos")  # the list, fresh for a whole number of seconds
    clock.now += 0.5  # so each answer made from it stays exact for half a second
    ready = spy_on_answers(demo_client, monkeypatch)
    heights = range(200, 250)
    for _ in range(2):
        for height in heights:
            response = await demo_client.get(f"/wallpaper?photo_number=0&height={height}")
            assert response.status == 200
    assert [answer is not None for answer in ready] == [False] * 50 + [True] * 50


async def test_the_default_table_holds_five_thousand_answers():
    settings = Settings()
    cache = BoundedMemoryCache(10**9, settings.cache_entries)
    ready = create_app(settings)[READY_ANSWERS]
    ready.watch(cache)
    for n in range(5000):
        await kept(cache, ready, f"/wallpaper?photo_number={n % 25}&height={200 + n // 25}",
                   f"wallpaper:{n}")
    assert len(ready) == 5000
    assert found(ready, "/wallpaper?photo_number=0&height=200") == [True]


async def test_a_ready_answer_outlives_the_second_and_counts_max_age_down(demo_client, monkeypatch,
                                                                        clock: Clock):
    """When the second its max-age was counted in ends, a ready answer works its Cache-Control
    out again, as the full path would, instead of stepping aside for the full path."""
    await demo_client.get("/api/photos")  # the list, fresh for a whole number of seconds
    clock.now += 0.5
    await demo_client.get(WALLPAPER)
    ready = spy_on_answers(demo_client, monkeypatch)
    ages = []
    for _ in range(3):
        clock.now += 1
        response = await demo_client.get(WALLPAPER)
        ages.append(int(re.findall(r"max-age=(\d+)", response.headers["Cache-Control"])[0]))
    assert [answer is not None for answer in ready] == [True] * 3
    assert ages == [298, 297, 296]  # the list (info_ttl 300) runs out before the image


@pytest.mark.parametrize("path", ["/api/photos", "/wallpaper?height=100"])
async def test_a_repeated_request_is_answered_ready_without_the_pipeline(
        demo_client, clock: Clock, monkeypatch, path):
    """The README's response cache: the same answer again, without asking the pipeline."""
    pipeline = demo_client.app[PIPELINE]
    fetched = clock.now
    await demo_client.get(path)
    clock.now = fetched + 0.5  # max-age ticks at whole seconds of the list's age
    kept = await demo_client.get(path)
    asked: list[Query] = []
    real = pipeline.listing
    monkeypatch.setattr(pipeline, "listing", lambda query: asked.append(query) or real(query))
    again = await demo_client.get(path)
    assert asked == []
    assert (again.headers["X-Cache"], await again.read()) == ("HIT", await kept.read())


@pytest.mark.parametrize("first_after", [0.7, 0.1])
async def test_a_ready_list_answer_says_what_the_full_path_would_once_its_headers_change(
        client_for, clock: Clock, first_after):
    """Max-age and the stale window tick at different instants when the operator's
    `max_stale` is fractional; whichever ticks first, the next answer must say so."""
    client = await client_for(Settings(source="demo", max_stale=11.3))
    fetched = clock.now
    await client.get("/api/photos")
    clock.now = fetched + first_after
    await client.get("/api/photos")
    clock.now += 0.5
    response = await client.get("/api/photos")
    fresh = 300 - (clock.now - fetched)
    max_age = math.ceil(fresh)
    assert response.headers["Cache-Control"] == (
        f"max-age={max_age}, stale-while-revalidate={int(fresh + 11.3) - max_age}, "
        f"stale-if-error={int(fresh + 11.3) - max_age}")


async def test_answers_made_from_one_list_share_one_clock(demo_client, clock: Clock,
                                                          monkeypatch):
    """A working set of wallpapers from one list works its Cache-Control out once a second,
    not once per answer; an answer sent after another renewed the clock shows the new header."""
    worked_out: list[float] = []
    real = handlers._wallpaper_cache_control
    monkeypatch.setattr(handlers, "_wallpaper_cache_control",
                        lambda expires, now: worked_out.append(now) or real(expires, now))
    fetched = clock.now
    await demo_client.get("/api/photos")
    clock.now = fetched + 0.5
    targets = [f"/wallpaper?photo_number=0&height={height}" for height in range(200, 210)]
    for target in targets:
        await demo_client.get(target)
    ready = spy_on_answers(demo_client, monkeypatch)
    worked_out.clear()
    clock.now = fetched + 1.5  # the second of every answer's max-age has ended
    headers = [(await demo_client.get(target)).headers["Cache-Control"] for target in targets]
    assert [answer is not None for answer in ready] == [True] * len(targets)
    assert headers == ["max-age=298"] * len(targets)
    assert worked_out == [clock.now]


async def test_a_ready_wallpaper_answer_counts_its_max_age_down_as_the_full_path_would(
        demo_client, clock: Clock):
    fetched = clock.now
    await demo_client.get("/api/photos")
    for after in (0.7, 0.9, 1.2):  # made; asked again (299.1 s of the list left); ticked
        clock.now = fetched + after
        response = await demo_client.get("/wallpaper?height=100")
    assert response.headers["Cache-Control"] == "max-age=298"


def list_hits(pipeline: Pipeline) -> float:
    return pipeline.metrics.registry.get_sample_value(
        "marsserver_cache_requests_total", {"cache": "list", "result": "hit"}) or 0.0


async def test_ready_answers_count_what_the_full_path_counts(app_for, clock):
    client = await app_for(RoverFeed())
    pipeline = pipeline_of(client)
    await client.get("/api/photos?sol=50")
    before = list_hits(pipeline)
    await client.get("/api/photos?sol=50", headers={"If-None-Match": '"other"'})  # full path
    full = list_hits(pipeline) - before
    before = list_hits(pipeline)
    assert (await client.get("/api/photos?sol=50")).headers["X-Cache"] == "HIT"  # ready
    assert list_hits(pipeline) - before == full


class TwoImages(Gated):
    async def image(self, link: str) -> bytes:
        await self._pass("image")
        return IMAGES[int(link.rsplit("/", 1)[1].split(".")[0])].read_bytes()


async def test_a_list_change_during_a_miss_never_makes_the_old_photo_the_new_one(app_for):
    source = TwoImages()
    client = await app_for(source, info_ttl=300)
    pipeline = pipeline_of(client)
    await pipeline.today()
    gate = source.hold("image")
    url = "/wallpaper?photo_number=0&height=64&format=jpeg"
    request = asyncio.create_task(client.get(url))
    await until(lambda: source.calls["image"] == 1)
    moved = Listing("gated", "curiosity", 2, (source.frames[1], source.frames[0]))
    relisted = cached_listing(moved, LATEST, 300, time.time(), paths=Paths())
    await pipeline.cache.set(NEWEST_KEY, relisted, ttl=600)
    gate.set()
    answer = await request  # the old photo 0, answered as the old list's
    assert answer.status == 200
    again = await client.get(url)
    truth = await client.get(url, headers={"If-None-Match": '"x"'})  # the full path
    assert await again.read() == await truth.read() != await answer.read()


class BusySols(RoverFeed):
    """A rover feed whose every sol is busy: 300 whole frames to a list."""

    def __init__(self) -> None:
        super().__init__()
        self.frames = tuple(Photo(id=str(n), camera="NAV", taken="2024-01-01T00:00:00Z",
                                  img_src=f"https://mars.nasa.gov/img/{n}.jpg")
                            for n in range(300))


async def test_ready_answers_keep_no_list_alive_that_the_cache_let_go_of(aiohttp_client):
    """A client walking sols with tiny wallpapers: every answer is made from a whole list, and
    a small cache keeps only a few lists. What the ready answers hold must not keep the others
    alive, or memory grows past --cache-bytes with every sol walked."""
    settings = Settings(cache_bytes=2 * 2**20)
    client = await aiohttp_client(create_app(settings, source=BusySols()))
    for sol in range(1, 61):
        response = await client.get(f"/wallpaper?sol={sol}&height=16&format=jpeg")
        assert response.status == 200
    assert len(client.app[READY_ANSWERS]) > 0
    cache = client.app[PIPELINE].cache
    held = {id(entry) for entry in cache.view().values() if isinstance(entry, CachedListing)}
    gc.collect()
    alive = {id(thing) for thing in gc.get_objects() if isinstance(thing, CachedListing)}
    assert len(held) < 60  # the cache let lists go
    assert alive == held


@pytest.mark.parametrize("condition", [{"If-Match": '"another"'}, {"If-None-Match": "*"}])
async def test_an_answer_to_a_conditional_request_is_never_sent_again(demo_client, clock: Clock,
                                                                     condition):
    """A 412 or 304 answers one request's condition: the plain request after it gets the
    image, from a ready answer or the full path alike."""
    fetched = clock.now
    await demo_client.get("/api/photos")
    clock.now = fetched + 0.5
    made = await demo_client.get(WALLPAPER)
    image = await made.read()
    conditional = await demo_client.get(WALLPAPER, headers=condition)
    assert conditional.status in (304, 412)
    again = await demo_client.get(WALLPAPER)
    assert (again.status, await again.read()) == (200, image)


async def test_an_answer_already_due_is_not_kept_and_crowds_nothing_out():
    """Between its list falling due and the refresh landing, the full path answers: what it
    made then would never be sent again, so keeping it could only push live answers out."""
    cache, ready = tables(max_entries=1)
    await kept(cache, ready, "/live")
    await cache.set("k2", b"entry", ttl=60)
    request = SimpleNamespace(raw_path="/due", headers=CIMultiDict())
    ready.remember(request, web.Response(body=cache.peek("k2")),  # type: ignore[arg-type]
                   FOREVER, time.time() - 1, (("k2", cache.peek("k2")),), HitCount())
    assert found(ready, "/live", "/due") == [True, False]


async def test_answers_whose_cache_control_differs_only_by_keyword_have_clocks_of_their_own():
    cache, ready = BoundedMemoryCache(10**9, 100), ReadyAnswers(100, 10**9)
    ready.watch(cache)

    def max_age(now: float, *, seconds: int) -> tuple[str, float]:
        return f"max-age={seconds}", 1e12

    for target, seconds in (("/a", 10), ("/b", 20)):
        await cache.set(target, b"entry", ttl=60)
        request = SimpleNamespace(raw_path=target, headers=CIMultiDict())
        ready.remember(request, web.Response(body=cache.peek(target)),  # type: ignore[arg-type]
                       partial(max_age, seconds=seconds), 1e12,
                       ((target, cache.peek(target)),), HitCount())
    headers = [ready.answer(make_mocked_request("GET", target)).headers["Cache-Control"]
               for target in ("/a", "/b")]
    assert headers == ["max-age=10", "max-age=20"]
