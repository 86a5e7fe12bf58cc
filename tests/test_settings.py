"""Settings: read as written (sizes with units, a rover and its feed), and checked through the
running app, not only parsed: what each promises happens."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as redis
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from marsserver import Settings, create_app
from marsserver.core.pipeline import NEWEST_KEY

from .helpers import Clock, pipeline_of, until
from .stub import Stub


async def test_cache_bytes_bounds_what_the_running_app_holds(stub: Stub, client_for):
    bound = 400_000
    client = await client_for(stub.settings(cache_bytes=bound))
    cache = pipeline_of(client).cache
    sizes = []
    for height in range(200, 1400, 100):
        assert (await client.get(f"/wallpaper?height={height}")).status == 200
        sizes.append(cache.nbytes)
    assert max(sizes) <= bound
    assert sum(key.startswith("wallpaper:x200-") for key in cache.view()) == 0  # evicted
    assert (await client.get("/wallpaper?height=1300")).headers["X-Cache"] == "HIT"


async def test_error_ttl_is_how_long_a_failure_is_replayed(stub: Stub, client_for, clock: Clock):
    client = await client_for(stub.settings(error_ttl=30, retries=0))
    stub.fail("feed", 500)
    start = clock.now
    for seconds in (0, 10, 29.9):
        clock.now = start + seconds
        assert (await client.get("/api/photos")).status == 502
    assert stub.calls["feed"] == 1  # replayed, not asked again, for 30 s
    clock.now = start + 30.1
    stub.faults.clear()
    assert (await client.get("/api/photos")).status == 200
    assert stub.calls["feed"] == 2


async def test_max_stale_is_how_long_an_old_list_outlives_a_failing_nasa(stub: Stub,
                                                                         client_for):
    client = await client_for(stub.settings(info_ttl=0.2, max_stale=0.3, retries=0,
                                            error_ttl=60))
    pipeline = pipeline_of(client)
    assert (await client.get("/api/photos")).status == 200
    stub.fail("feed", 500)
    await until(lambda: pipeline.list_fresh_for() < 0)
    assert (await client.get("/api/photos")).headers["X-Cache"] == "STALE"
    started = time.monotonic()
    await until(lambda: pipeline.cache.peek(NEWEST_KEY) is None)  # gone with its TTL
    assert time.monotonic() - started < 0.5
    assert (await client.get("/api/photos")).status == 502


async def test_a_lease_is_renewed_for_as_long_as_its_work_runs(stub: Stub, client_for,
                                                              redis_url: str):
    leader, follower = [await client_for(stub.settings(cache=redis_url, lease=0.3,
                                                       redis_timeout=0.15))
                        for _ in range(2)]
    await leader.get("/api/photos")
    held = stub.hold(stub.feed_images[0])
    first = asyncio.create_task(leader.get("/wallpaper?height=150"))
    await until(lambda: stub.downloads() == 1)
    second = asyncio.create_task(follower.get("/wallpaper?height=150"))
    shared = redis.Redis.from_url(redis_url)
    leases = await shared.keys("*:lease:source:*")
    assert len(leases) == 1
    started = time.monotonic()
    while time.monotonic() - started < 1.2:  # four lease periods, watched all along
        assert await shared.exists(leases[0]), "the lease lapsed while its work ran"
        await asyncio.sleep(0.05)  # polling Redis while the clock runs
    held.set()
    responses = await asyncio.gather(first, second)
    assert [r.status for r in responses] == [200, 200]
    assert stub.downloads() == 1  # nobody took over work that was still going
    await shared.aclose()


async def test_a_lost_lease_is_said_once_and_no_longer_renewed(stub: Stub, client_for,
                                                               redis_url: str, caplog):
    """A lease Redis dropped (evicted, or expired while Redis was away) cannot be renewed
    back: one WARNING, not one per renewal tick for as long as the work runs."""
    leader = await client_for(stub.settings(cache=redis_url, lease=0.3, redis_timeout=0.15))
    await leader.get("/api/photos")
    held = stub.hold(stub.feed_images[0])
    first = asyncio.create_task(leader.get("/wallpaper?height=150"))
    await until(lambda: stub.downloads() == 1)
    shared = redis.Redis.from_url(redis_url)
    (lease,) = await shared.keys("*:lease:source:*")
    await shared.delete(lease)

    def lost() -> int:
        return sum("lost the Redis lease" in r.getMessage() for r in caplog.records)
    await until(lambda: lost() == 1)
    started = time.monotonic()
    while time.monotonic() - started < 0.6:  # six renewal periods, watched all along
        assert lost() == 1
        await asyncio.sleep(0.05)  # the clock must run for renewals to be missed
    held.set()
    assert (await first).status == 200
    await shared.aclose()


async def test_the_api_key_reaches_the_mars_photos_api(aiohttp_client: AiohttpClient,
                                                       aiohttp_server):
    seen: list[str] = []

    async def latest(request: web.Request) -> web.Response:
        seen.append(request.query.get("api_key", ""))
        return web.json_response({"latest_photos": []})

    api = web.Application()
    api.router.add_get("/rovers/curiosity/latest_photos", latest)
    server = await aiohttp_server(api)
    client = await aiohttp_client(create_app(Settings(
        source="mars-photos", api_url=f"http://127.0.0.1:{server.port}", api_key="SECRET-KEY",
        retries=0)))
    await client.get("/api/photos")
    assert seen == ["SECRET-KEY"]


@pytest.mark.parametrize(("text", "size"), [
    ("268435456", 268_435_456), ("64MiB", 67_108_864), ("64 MiB", 67_108_864),
    ("64mib", 67_108_864), ("512M", 512_000_000), ("512MB", 512_000_000), ("1GiB", 1_073_741_824),
    ("2 G", 2_000_000_000), ("1k", 1000), ("1KiB", 1024), ("100B", 100), (" 8KiB ", 8192),
])
def test_byte_sizes_take_si_and_iec_units(text, size):
    settings = Settings.from_strings({"cache_bytes": text, "max_source_bytes": text})
    assert (settings.cache_bytes, settings.max_source_bytes) == (size, size)


@pytest.mark.parametrize("text", ["64 XB", "1.5GiB", "-1", "", "MiB", "64iB", "1T", "1 024",
                                  "\u0661\u0666"])
def test_a_bad_byte_size_is_one_line_naming_the_option(text):
    with pytest.raises(ValueError, match="is not a valid size") as raised:
        Settings.from_strings({"max_source_bytes": text})
    assert str(raised.value) == (
        f"--max-source-bytes / MARS_MAX_SOURCE_BYTES: {text!r} is not a valid size")


@pytest.mark.parametrize(("values", "source", "rover"), [
    ({}, "msl", None),
    ({"rover": "perseverance"}, "m2020", "perseverance"),
    ({"rover": "perseverance", "source": "demo"}, "demo", "perseverance"),
    ({"rover": "curiosity", "source": "mars-photos"}, "mars-photos", "curiosity"),
])
def test_rover_picks_its_own_feed_unless_a_source_is_named(values, source, rover):
    settings = Settings(**values)
    assert (settings.source, settings.rover) == (source, rover)


def test_curiosity_cannot_be_served_from_perseverances_feed():
    with pytest.raises(ValueError, match="m2020 is Perseverance's feed"):
        Settings(rover="curiosity", source="m2020")
