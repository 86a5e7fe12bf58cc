"""Any sol, any camera, through the service: each its own cache entry and flight, honest 404s
(remembered, not asked again), old sols cached longer (after a refresh too), a cached sol
served while the newest list cannot be had, and the gallery browsing between them."""

from __future__ import annotations

import asyncio
import re
from functools import partial
from typing import ClassVar

from aiohttp import web

from marsserver import Settings, create_app
from marsserver.core.entries import CachedListing, Codec
from marsserver.core.pipeline import NEWEST_KEY, Served, list_key
from marsserver.http.views import Paths, cached_listing
from marsserver.sources import Listing, Photo, Query

from .helpers import Gated, RoverFeed, pipeline_of, until
from .stub import Stub


class Sols(Gated):
    """A feed whose newest sol is 100, where every sol has two photos from two cameras."""

    name: ClassVar[str] = "sols"

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[Query] = []

    async def photos(self, query: Query) -> Listing:
        self.queries.append(query)
        await self._pass("list")
        sol = 100 if query.sol is None else query.sol
        photos = tuple(Photo(id=f"{sol}-{camera}", camera=camera, taken="2024-01-01T00:00:00Z",
                             img_src=f"https://mars.nasa.gov/{sol}/{camera}.jpg")
                       for camera in ("NAV_LEFT_B", "MAST_LEFT")
                       if not query.cameras or camera in query.cameras)
        return Listing("sols", "curiosity", sol, photos, newest_sol=100,
                       dropped={"thumbnail": 3, "strip": 1})

    async def latest(self) -> Listing:
        return await self.photos(Query())


async def test_forty_concurrent_requests_for_a_past_sol_cost_one_upstream_call(aiohttp_client):
    source = Sols()
    client = await aiohttp_client(create_app(Settings(source="demo"), source=source))
    await client.get("/api/photos")  # the newest list, which says how far sols go
    gate = source.hold("list")
    burst = [asyncio.create_task(client.get("/api/photos?sol=42")) for _ in range(40)]
    await until(lambda: sum(pipeline_of(client).in_flight().values()) == 40)
    gate.set()
    responses = await asyncio.gather(*burst)
    assert [r.status for r in responses] == [200] * 40
    assert {(await r.json())["sol"] for r in responses} == {42}
    assert source.queries == [Query(), Query(42)]


async def test_sols_and_cameras_are_cache_entries_of_their_own(aiohttp_client):
    source = Sols()
    client = await aiohttp_client(create_app(Settings(source="demo"), source=source))
    newest = await (await client.get("/api/photos")).json()
    past = await (await client.get("/api/photos?sol=99&camera=mast_left")).json()
    again = await client.get("/api/photos?camera=MAST_LEFT&sol=99")
    assert (newest["sol"], newest["count"], past["sol"], past["count"]) == (100, 2, 99, 1)
    assert past["cameras"] == ["MAST_LEFT"]
    assert past["photos"][0]["camera_name"] != "MAST_LEFT"  # a human name
    assert past["photos"][0]["wallpaper_url"] == (
        "/wallpaper?photo_number=0&sol=99&camera=MAST_LEFT")
    assert again.headers["X-Cache"] == "HIT"
    # sol 99 without a filter too, once: it says which cameras the sol has (the gallery's chips)
    assert source.queries == [Query(), Query(99, ("MAST_LEFT",)), Query(99)]

    wallpaper = await client.get("/wallpaper?photo_number=0&sol=99&camera=MAST_LEFT&height=64")
    assert wallpaper.status == 200
    assert source.calls["image"] == 1


async def test_a_sol_beyond_the_newest_is_a_404_and_a_malformed_one_a_400(aiohttp_client):
    client = await aiohttp_client(create_app(Settings(source="demo")))
    beyond = await client.get("/api/photos?sol=4001")
    assert beyond.status == 404
    assert await beyond.json() == {"error": "not_found",
                                   "detail": "sol 4001 is beyond the newest sol, 4000"}
    for bad in ("-1", "1.5", "x", "100000"):
        response = await client.get(f"/api/photos?sol={bad}")
        assert (response.status, (await response.json())["error"]) == (400, "bad_parameter")
    assert (await client.get("/wallpaper?sol=4001")).status == 404
    assert (await client.get("/api/photos?camera=nav%20left")).status == 400


async def test_a_camera_with_no_photos_is_a_404_naming_the_cameras_the_sol_has(aiohttp_client):
    client = await aiohttp_client(create_app(Settings(source="demo")))
    response = await client.get("/api/photos?sol=3990&camera=MCZ_LEFT")
    assert (response.status, (await response.json())["detail"]) == (
        404, "the demo has no photos of sol 3990 from MCZ_LEFT; that sol has photos from "
             "DEMO_FHAZ, DEMO_MAST, DEMO_NAV_LEFT")
    newest = await client.get("/api/photos?camera=nav")
    assert (newest.status, (await newest.json())["detail"]) == (
        404, "the demo has no photos from NAV; the newest sol, 4000, has photos from "
             "DEMO_FHAZ, DEMO_MAST, DEMO_NAV_LEFT, DEMO_NAV_RIGHT")


async def test_old_sols_are_cached_and_offered_to_caches_for_longer(aiohttp_client, clock):
    client = await aiohttp_client(create_app(Settings(source="demo", info_ttl=60,
                                                      old_sol_after=14, old_sol_ttl=7200)))
    recent = await client.get("/api/photos?sol=3986")  # 14 sols behind: still recent
    old = await client.get("/api/photos?sol=3985")  # 15 behind
    assert recent.headers["Cache-Control"].startswith("max-age=60,")
    assert old.headers["Cache-Control"].startswith("max-age=7200,")
    clock.now += 61
    assert (await client.get("/api/photos?sol=3985")).headers["X-Cache"] == "HIT"
    assert (await client.get("/api/photos?sol=3986")).headers["X-Cache"] == "STALE"


async def test_dropped_items_are_counted_by_reason(aiohttp_client):
    client = await aiohttp_client(create_app(Settings(source="demo"), source=Sols()))
    await client.get("/api/photos")
    await client.get("/api/photos?sol=7")
    metrics = await (await client.get("/metrics")).text()
    assert 'marsserver_feed_items_dropped_total{reason="thumbnail",source="sols"} 6.0' in metrics
    assert 'marsserver_feed_items_dropped_total{reason="strip",source="sols"} 2.0' in metrics


async def test_the_gallery_links_to_neighbouring_sols_and_each_camera(aiohttp_client):
    client = await aiohttp_client(create_app(Settings(source="demo")))
    page = await (await client.get("/?sol=3990", headers={"Accept": "text/html"})).text()
    assert '<a href="/?sol=3989">&larr; sol 3989</a>' in page
    assert '<a href="/?sol=3991">sol 3991 &rarr;</a>' in page
    cameras = re.findall(r'<a href="/\?sol=3990&amp;camera=(\w+)"', page)
    listing = await (await client.get("/api/photos?sol=3990")).json()
    assert sorted(cameras) == sorted({photo["camera"] for photo in listing["photos"]})
    newest = await (await client.get("/", headers={"Accept": "text/html"})).text()
    assert "sol 4001" not in newest  # nothing past the newest sol
    for camera in cameras:
        filtered = await client.get(f"/api/photos?sol=3990&camera={camera}")
        assert filtered.status == 200


async def test_an_old_sol_keeps_its_long_ttl_after_a_refresh(app_for, clock):
    source = RoverFeed()
    client = await app_for(source, info_ttl=60, max_stale=600, old_sol_ttl=3600,
                           old_sol_after=14)
    assert (await client.get("/api/photos?sol=50")).headers["Cache-Control"].startswith(
        "max-age=3600")
    clock.now += 3601
    assert (await client.get("/api/photos?sol=50")).headers["X-Cache"] == "STALE"
    await until(lambda: not pipeline_of(client).background)
    again = await client.get("/api/photos?sol=50")
    assert again.headers["Cache-Control"].startswith("max-age=3600")


async def test_a_camera_with_no_photos_is_remembered_not_asked_every_time(app_for):
    source = RoverFeed()
    client = await app_for(source, error_ttl=60)
    statuses = [(await client.get("/api/photos?camera=ZZZZ")).status for _ in range(5)]
    assert statuses == [404] * 5
    assert source.calls.count("sol=latest&camera=ZZZZ") == 1


async def test_a_cached_sol_answers_while_the_newest_list_cannot_be_had(app_for):
    source = RoverFeed()
    client = await app_for(source, retries=0)
    pipeline = pipeline_of(client)
    assert (await client.get("/api/photos?sol=50")).status == 200
    source.down = True
    await pipeline.cache.delete(NEWEST_KEY)  # the newest list left memory (LRU, restart)
    response = await client.get("/api/photos?sol=50", headers={"If-None-Match": '"x"'})
    assert response.status == 200


async def test_a_filtered_gallery_keeps_every_camera_and_its_sol_links_lead_somewhere(
        aiohttp_client):
    """Filtered to the front hazard camera, "sol 3999" used to keep the filter and land on a
    404 (that camera took nothing on sol 3999), and the other cameras' chips were gone."""
    client = await aiohttp_client(create_app(Settings(source="demo")))
    html = {"Accept": "text/html"}
    page = await (await client.get("/?sol=3998&camera=DEMO_FHAZ", headers=html)).text()
    chips = re.findall(r'<a href="/\?sol=3998(?:&amp;camera=(\w+))?"[^>]*?( aria-current=true)?>',
                       page)
    assert chips == [("", ""), ("DEMO_FHAZ", " aria-current=true"), ("DEMO_MAST", ""),
                     ("DEMO_NAV_RIGHT", "")]
    sols = re.findall(r'<a href="([^"]*)">(?:&larr; )?sol \d+', page)
    assert sols == ["/?sol=3997", "/?sol=3999"]
    assert "Other sols open with all cameras" in page
    assert (await client.get("/?sol=3999&camera=DEMO_FHAZ", headers=html)).status == 404
    for link in sols:
        assert (await client.get(link, headers=html)).status == 200


async def test_a_sols_cameras_survive_the_shared_cache():
    listing = Listing("demo", "curiosity", 7, (), 9, sol_cameras=("MAST_LEFT", "NAV_LEFT_B"))
    codec = Codec(partial(cached_listing, paths=Paths()))
    made = cached_listing(listing, Query(7, ("NAV_LEFT_B",)), 60.0, 1.0, paths=Paths())
    loaded = codec.load(codec.dump(made), "list:")
    assert isinstance(loaded, CachedListing)
    assert (loaded.listing, loaded.html) == (listing, made.html)


async def test_a_camera_a_sol_lacks_costs_one_feed_call_remembered_as_long_as_a_list(
        client_for, stub: Stub, clock):
    """A feed that ignores the camera search, with full pages: asking for a camera the sol
    lacks reads one page, not all ten, and the 404 is kept as long as a list (info_ttl), not
    error_ttl, however often it is asked."""
    template = stub.feed([f"{stub.base}/images/{stub.feed_images[0]}"])["items"][0]

    async def full_pages(request: web.Request) -> web.Response:
        sol = int(request.query.get("condition_2", "100:sol:in").split(":")[0])
        page = int(request.query["page"])
        return web.json_response({"items": [
            {**template, "sol": sol, "id": sol * 10**4 + page * 100 + n} for n in range(100)]})

    stub.faults["feed"] = full_pages
    client = await client_for(stub.settings(error_ttl=5, info_ttl=300))
    assert (await client.get("/api/photos?sol=50")).status == 200  # the sol's list is cached
    stub.calls.clear()
    missing = await client.get("/api/photos?sol=50&camera=MAST_LEFT")
    assert missing.status == 404
    assert "that sol has photos from NAV_LEFT_B" in (await missing.json())["detail"]
    assert stub.calls["feed"] == 1
    start = clock.now
    for elapsed in (6, 60, 290):  # past error_ttl; short of the newest list falling due
        clock.now = start + elapsed
        assert (await client.get("/api/photos?sol=50&camera=MAST_LEFT")).status == 404
    assert stub.calls["feed"] == 1


class MovingFeed(RoverFeed):
    """A rover feed whose newest sol moves when the test says so."""

    def __init__(self, newest: int) -> None:
        super().__init__()
        self.newest = newest

    async def latest(self) -> Listing:
        self.calls.append("latest")
        return Listing("sols", "curiosity", self.newest, self.frames, newest_sol=self.newest)


async def test_a_sol_that_turned_old_between_fetches_is_kept_as_long_as_it_is_offered(
        app_for, clock):
    """The refresh stores the list it fetched with that list's TTL, not the one it replaced."""
    source = MovingFeed(newest=60)
    client = await app_for(source, info_ttl=60, max_stale=0, old_sol_ttl=3600, old_sol_after=14)
    pipeline = pipeline_of(client)
    recent = await client.get("/api/photos?sol=50")  # 10 sols behind the newest
    assert recent.headers["Cache-Control"].startswith("max-age=60,")
    source.newest = 70  # now 20 behind: old
    clock.now += 61
    for target in ("/api/photos", "/api/photos?sol=50"):
        assert (await client.get(target)).headers["X-Cache"] == "STALE"
        await until(lambda: not pipeline.background)
    old = await client.get("/api/photos?sol=50")
    assert (old.headers["X-Cache"], old.headers["Cache-Control"][:14]) == ("HIT", "max-age=3600, ")
    assert 3590 < pipeline.cache.expires_in(list_key(Query(50))) <= 3600


async def test_an_old_sol_keeps_its_long_ttl_where_the_newest_list_is_not_in_memory(
        app_for, redis_url, clock):
    """The instance refreshing an old sol knows how old it is from the shared cache."""
    source = RoverFeed()
    settings = {"cache": redis_url, "info_ttl": 60, "old_sol_ttl": 3600, "old_sol_after": 14}
    one, two = [await app_for(source, **settings) for _ in range(2)]
    assert (await one.get("/api/photos?sol=50")).headers["Cache-Control"].startswith(
        "max-age=3600,")
    assert (await two.get("/api/photos?sol=50")).headers["X-Cache"] == "SHARED"
    await pipeline_of(two).cache.front.delete(NEWEST_KEY)  # evicted here; Redis still has it
    clock.now += 3601
    assert (await two.get("/api/photos?sol=50")).headers["X-Cache"] == "STALE"
    await until(lambda: not pipeline_of(two).background)
    again = await two.get("/api/photos?sol=50")
    assert (again.headers["X-Cache"], again.headers["Cache-Control"][:14]) == (
        "HIT", "max-age=3600, ")


async def test_a_sol_asked_for_in_its_last_seconds_is_refreshed_ahead_and_served_fresh(
        app_for, clock):
    """What operating.md promises for lists other than the newest: refreshed ahead by a
    request that finds them due (not by a timer of their own, as the newest list is)."""
    source = RoverFeed()
    pipeline = pipeline_of(await app_for(source, info_ttl=8))
    first, _ = await pipeline.listing(Query(95))  # a recent sol
    clock.now += 7  # due (2 s ahead), not stale
    again, served = await pipeline.listing(Query(95))
    assert (again, served) == (first, Served.HIT)
    await until(lambda: not pipeline.background)
    assert source.calls.count(Query(95).key) == 2
    assert pipeline.list_fresh_for(Query(95)) == 8
