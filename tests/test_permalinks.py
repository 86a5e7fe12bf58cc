"""Permalinks, `/photos/{id}/wallpaper?sol=N`: one photo for good, whatever the list says later
and on any worker, cold or restarted, with memory or Redis, found again through its sol with
one listing; immutable for caches, varying only with a negotiated format; an unknown id is a
JSON 404 that quotes it back, cut short."""

from __future__ import annotations

import asyncio

import redis.asyncio as redis
from aiohttp import web
from aiohttp.test_utils import TestClient

from marsserver import Settings, create_app
from marsserver.sources import Listing, Query
from marsserver.sources.demo import DemoSource

from .helpers import DEMO_PERMALINK, Clock, pipeline_of, until
from .stub import Stub


class CountedDemo(DemoSource):
    """The demo source, counting the lists it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[Query] = []

    async def photos(self, query: Query) -> Listing:
        self.queries.append(query)
        return await super().photos(query)


async def permalink_of_sol_3990(client: TestClient[web.Request, web.Application]) -> str:
    listing = await (await client.get("/api/photos?sol=3990")).json()
    return str(listing["photos"][1]["permalink"]) + "&height=200"


async def test_a_permalink_is_immutable_and_varies_only_with_a_negotiated_format(demo_client):
    negotiated = await demo_client.get(DEMO_PERMALINK)
    assert negotiated.status == 200
    assert negotiated.headers["Cache-Control"] == "max-age=31536000, immutable"
    assert negotiated.headers["Vary"] == "Accept"
    assert "Content-Disposition" not in negotiated.headers
    chosen = await demo_client.get(DEMO_PERMALINK + "&format=jpeg")
    assert "Vary" not in chosen.headers
    download = await demo_client.get(DEMO_PERMALINK + "&download=1")
    assert download.headers["Content-Disposition"].startswith('attachment; filename="')


async def test_a_permalink_keeps_its_bytes_after_the_list_moves_on(stub: Stub, client_for,
                                                                    clock: Clock):
    client = await client_for(stub.settings(info_ttl=60))
    first = (await (await client.get("/api/photos")).json())["photos"][0]
    before = await (await client.get(first["permalink"] + "&height=120")).read()
    stub.feed_images = stub.images_not_in_feed()[:1]  # a new sol: a different photo list
    clock.now += 61
    await client.get("/api/photos")  # stale; the refresh brings the new list
    await until(lambda: not pipeline_of(client).background)
    listed = await (await client.get("/api/photos")).json()
    assert first["permalink"] not in {p["permalink"] for p in listed["photos"]}

    after = await client.get(first["permalink"] + "&height=120")
    assert (after.status, await after.read()) == (200, before)


async def test_a_permalink_answers_on_a_worker_that_never_listed_photos(aiohttp_client):
    first = await aiohttp_client(create_app(Settings(source="demo")))
    second = await aiohttp_client(create_app(Settings(source="demo")))  # or after a restart
    permalink = (await (await first.get("/api/photos")).json())["photos"][0]["permalink"]
    assert (await second.get(permalink + "&height=100")).status == 200


async def test_an_unknown_photo_is_a_json_404(demo_client):
    for path in ("/photos/nope/wallpaper", "/photos/..%2F/wallpaper", "/photos/%00/wallpaper"):
        response = await demo_client.get(path)
        assert response.status == 404, path
        assert (await response.json())["error"] == "not_found"


async def test_an_unknown_photo_id_is_quoted_back_cut_to_80_characters(demo_client):
    response = await demo_client.get("/photos/" + "%25" + "x" * 200 + "/wallpaper")
    assert response.status == 404
    assert await response.json() == {"error": "not_found",
                                     "detail": "no photo " + repr("%" + "x" * 79)}


async def test_a_permalink_answers_after_a_restart_with_one_listing_of_its_sol(aiohttp_client):
    settings = Settings(source="demo")
    before = await aiohttp_client(create_app(settings))
    permalink = await permalink_of_sol_3990(before)
    assert permalink.startswith("/photos/demo-3990-1/wallpaper?sol=3990&")
    made = await (await before.get(permalink)).read()
    await before.close()

    source = CountedDemo()  # the same settings, restarted: nothing listed yet
    after = await aiohttp_client(create_app(settings, source=source))
    answers = await asyncio.gather(*(after.get(permalink) for _ in range(10)))
    assert [(r.status, r.headers["Cache-Control"]) for r in answers] == [
        (200, "max-age=31536000, immutable")] * 10
    assert {await r.read() for r in answers} == {made}
    # the newest list (is sol 3990 past it?) and sol 3990's, each read once
    assert source.queries == [Query(), Query(3990)]


async def test_a_permalink_answers_after_redis_forgot_it(aiohttp_client, redis_url):
    """A Redis restarted empty (or one that evicted the photo index): the link still finds
    its photo, on a new instance with the same settings."""
    settings = Settings(source="demo", cache=redis_url)
    before = await aiohttp_client(create_app(settings))
    permalink = await permalink_of_sol_3990(before)
    made = await (await before.get(permalink)).read()
    await before.close()
    shared = redis.Redis.from_url(redis_url)
    try:
        await shared.flushdb()
    finally:
        await shared.aclose()

    after = await aiohttp_client(create_app(settings))
    response = await after.get(permalink)
    assert (response.status, await response.read()) == (200, made)


async def test_a_photo_not_in_its_sol_is_a_404_that_says_where_it_was_looked_for(demo_client):
    response = await demo_client.get("/photos/demo-3990-1/wallpaper?sol=3989")
    assert (response.status, await response.json()) == (404, {
        "error": "not_found", "detail": "no photo 'demo-3990-1' among the photos of sol 3989"})
    beyond = await demo_client.get("/photos/demo-3990-1/wallpaper?sol=4001")
    assert (await beyond.json())["detail"] == "sol 4001 is beyond the newest sol, 4000"
    bare = await demo_client.get("/photos/demo-3990-1/wallpaper")  # an old link, no sol
    assert bare.status == 404
    assert "without its sol" in (await bare.json())["detail"]
