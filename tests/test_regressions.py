"""Defects an independent review found in the redesigned coordination and HTTP layers, each
kept as the scenario that showed it."""

from __future__ import annotations

import asyncio
import re
import time
from typing import ClassVar

import pytest

from marsserver import Settings, create_app
from marsserver.core.pipeline import NEWEST_KEY, Pipeline
from marsserver.errors import BadUpstream, NotFound
from marsserver.http.views import Paths, cached_listing
from marsserver.imaging import Spec
from marsserver.sources import LATEST, Listing, Photo, Query

from .helpers import IMAGE, Gated, pipeline_of, planted_list, until
from .stub import IMAGES


class Sols:
    """Like msl and m2020: a sol's list does not say the newest sol; unknown cameras find
    nothing; NASA can go down."""

    name: ClassVar[str] = "sols"

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.down = False
        self.frames = tuple(Photo(id=str(n), camera="NAV", taken="2024-01-01T00:00:00Z",
                                  img_src=f"https://mars.nasa.gov/img/{n}.jpg")
                            for n in range(2))

    async def latest(self) -> Listing:
        self.calls.append("latest")
        if self.down:
            raise BadUpstream("NASA is down")
        return Listing("sols", "curiosity", 100, self.frames, newest_sol=100)

    async def photos(self, query: Query) -> Listing:
        self.calls.append(query.key)
        if query.cameras and query.cameras != ("NAV",):
            raise NotFound(f"no photos from {query.cameras}")
        return Listing("sols", "curiosity", query.sol or 100, self.frames, newest_sol=None)

    async def image(self, link: str) -> bytes:
        return IMAGE


def list_hits(pipeline: Pipeline) -> float:
    return pipeline.metrics.registry.get_sample_value(
        "marsserver_cache_requests_total", {"cache": "list", "result": "hit"}) or 0.0


async def test_an_old_sol_keeps_its_long_ttl_after_a_refresh(app_for, clock):
    source = Sols()
    client = await app_for(source, info_ttl=60, max_stale=600, old_sol_ttl=3600,
                           old_sol_after=14)
    assert (await client.get("/api/photos?sol=50")).headers["Cache-Control"].startswith(
        "public, max-age=3600")
    clock.now += 3601
    assert (await client.get("/api/photos?sol=50")).headers["X-Cache"] == "STALE"
    await until(lambda: not pipeline_of(client).background)
    again = await client.get("/api/photos?sol=50")
    assert again.headers["Cache-Control"].startswith("public, max-age=3600")


async def test_a_camera_with_no_photos_is_remembered_not_asked_every_time(app_for):
    source = Sols()
    client = await app_for(source, error_ttl=60)
    statuses = [(await client.get("/api/photos?camera=ZZZZ")).status for _ in range(5)]
    assert statuses == [404] * 5
    assert source.calls.count("sol=latest&camera=ZZZZ") == 1


async def test_a_reload_after_a_hang_up_joins_the_work_already_running(app_for, resizes):
    source = Gated()
    pipeline = pipeline_of(await app_for(source))
    await pipeline.today()
    gate = source.hold("image")
    first = asyncio.create_task(pipeline.wallpaper(0, Spec(300)))
    await until(lambda: source.calls["image"] == 1)
    first.cancel()  # the client hung up
    await asyncio.gather(first, return_exceptions=True)
    second = asyncio.create_task(pipeline.wallpaper(0, Spec(300)))  # and reloads
    await until(lambda: any(key.startswith("wallpaper:") for key in pipeline.in_flight()))
    gate.set()
    await second
    assert (source.calls["image"], resizes) == (1, [300])


@pytest.mark.parametrize("field", ["fetched_at", "fresh_for"])
@pytest.mark.parametrize("value", [b"NaN", b"Infinity", b"-1"])
async def test_a_non_finite_time_in_redis_is_a_miss(app_for, redis_url, field, value):
    def plant(raw: bytes) -> bytes:
        planted = re.sub(rb'"%s":[0-9.e+]+' % field.encode(),
                         b'"%s":%s' % (field.encode(), value), raw)
        assert planted != raw
        return planted

    _, reader = await planted_list(app_for, redis_url, plant)
    assert [(await reader.get("/api/photos")).status for _ in range(3)] == [200] * 3


async def test_ready_answers_count_what_the_full_path_counts(app_for, clock):
    client = await app_for(Sols())
    pipeline = pipeline_of(client)
    await client.get("/api/photos?sol=50")
    before = list_hits(pipeline)
    await client.get("/api/photos?sol=50", headers={"If-None-Match": '"other"'})  # full path
    full = list_hits(pipeline) - before
    before = list_hits(pipeline)
    assert (await client.get("/api/photos?sol=50")).headers["X-Cache"] == "HIT"  # ready
    assert list_hits(pipeline) - before == full


async def test_if_unmodified_since_before_the_photo_is_a_412_and_errors_vary(demo_client):
    photo = (await (await demo_client.get("/api/photos")).json())["photos"][0]
    url = photo["permalink"] + "?height=100"
    made = await demo_client.get(url)
    old = await demo_client.get(url, headers={"If-Unmodified-Since":
                                              "Mon, 01 Jan 1990 00:00:00 GMT"})
    assert old.status == 412
    same = await demo_client.get(url, headers={"If-Unmodified-Since":
                                               made.headers["Last-Modified"]})
    assert same.status == 200
    for accept in ("text/html", "application/json"):
        missing = await demo_client.get("/api/photos?sol=99999", headers={"Accept": accept})
        assert (missing.status, missing.headers["Vary"]) == (404, "Accept")


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


async def test_a_permalink_answers_on_a_worker_that_never_listed_photos(aiohttp_client):
    first = await aiohttp_client(create_app(Settings(source="demo")))
    second = await aiohttp_client(create_app(Settings(source="demo")))  # or after a restart
    permalink = (await (await first.get("/api/photos")).json())["photos"][0]["permalink"]
    assert (await second.get(permalink + "?height=100")).status == 200


async def test_a_cached_sol_answers_while_the_newest_list_cannot_be_had(app_for):
    source = Sols()
    client = await app_for(source, retries=0)
    pipeline = pipeline_of(client)
    assert (await client.get("/api/photos?sol=50")).status == 200
    source.down = True
    await pipeline.cache.delete(NEWEST_KEY)  # the newest list left memory (LRU, restart)
    response = await client.get("/api/photos?sol=50", headers={"If-None-Match": '"x"'})
    assert response.status == 200
