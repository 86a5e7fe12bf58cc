"""The coalescing guarantees, end to end against a real local stub upstream over sockets.

Gates in the stub hold NASA's answers until every request has joined the flight, so each
test proves sharing rather than hoping for overlap.
"""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from marsserver.core.pipeline import NEWEST_KEY, Pipeline, Served
from marsserver.errors import BadUpstream
from marsserver.imaging import Spec

from .helpers import pipeline_of, until
from .stub import Stub

BURST = 120


def waiters_of(pipeline: Pipeline, prefix: str) -> int:
    return max((n for key, n in pipeline.in_flight().items() if key.startswith(prefix)), default=0)


async def test_cold_burst_costs_one_list_one_download_one_resize(stub: Stub, client_for, resizes):
    client = await client_for(stub.settings())
    pipeline = pipeline_of(client)
    feed, image = stub.hold("feed"), stub.hold(stub.feed_images[0])

    requests = [asyncio.create_task(client.get("/wallpaper?photo_number=0&height=600"))
                for _ in range(BURST)]
    await until(lambda: waiters_of(pipeline, "list:") == BURST)
    feed.set()
    await until(lambda: waiters_of(pipeline, "wallpaper:") == BURST)
    image.set()
    responses = await asyncio.gather(*requests)

    assert [r.status for r in responses] == [200] * BURST
    bodies = {await r.read() for r in responses}
    assert len(bodies) == 1
    assert Image.open(io.BytesIO(bodies.pop())).height == 600
    assert stub.calls["feed"] == 1
    assert stub.downloads() == 1
    assert resizes == [600]
    assert sorted(r.headers["X-Cache"] for r in responses) == ["COALESCED"] * (BURST - 1) + ["MISS"]
    assert pipeline.in_flight() == {}


async def test_another_height_reuses_the_cached_source_image(stub: Stub, client_for, resizes):
    client = await client_for(stub.settings())
    first = await client.get("/wallpaper?photo_number=0&height=600")
    second = await client.get("/wallpaper?photo_number=0&height=300")
    again = await client.get("/wallpaper?photo_number=0&height=300")

    assert (first.status, second.status, again.status) == (200, 200, 200)
    assert stub.downloads() == 1
    assert resizes == [600, 300]
    assert again.headers["X-Cache"] == "HIT"
    assert await again.read() == await second.read()


async def test_disconnected_clients_do_not_cancel_work_others_wait_for(stub: Stub, client_for):
    client = await client_for(stub.settings())
    pipeline = pipeline_of(client)
    await client.get("/")  # list cached, so everyone meets at the wallpaper flight
    image = stub.hold(stub.feed_images[0])

    requests = [asyncio.create_task(client.get("/wallpaper?height=400")) for _ in range(10)]
    await until(lambda: waiters_of(pipeline, "wallpaper:") == 10)
    for request in requests[:7]:
        request.cancel()  # closes the connection; the test server cancels those handlers
    await until(lambda: waiters_of(pipeline, "wallpaper:") == 3)
    image.set()
    responses = await asyncio.gather(*requests[7:])

    assert all(request.cancelled() for request in requests[:7])
    assert [r.status for r in responses] == [200] * 3
    assert len({await r.read() for r in responses}) == 1
    assert stub.downloads() == 1
    assert pipeline.in_flight() == {}


async def test_last_waiter_leaving_keeps_started_work_and_leaks_nothing(stub: Stub, client_for,
                                                                        resizes):
    client = await client_for(stub.settings())
    pipeline = pipeline_of(client)
    await pipeline.today()
    image = stub.hold(stub.feed_images[0])

    waiters = [asyncio.create_task(pipeline.wallpaper(0, Spec(500))) for _ in range(5)]
    await until(lambda: waiters_of(pipeline, "wallpaper:") == 5)
    tasks_before = len(asyncio.all_tasks())
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)

    assert all(waiter.cancelled() for waiter in waiters)
    assert waiters_of(pipeline, "wallpaper:") == 0  # nobody waits on the wallpaper any more
    image.set()  # the download had started: it and its resize finish, and are kept
    await until(lambda: not pipeline.background)
    assert len(asyncio.all_tasks()) < tasks_before - len(waiters)
    assert pipeline.in_flight() == {}
    made, served = await pipeline.wallpaper(0, Spec(500))
    assert served is Served.HIT
    assert Image.open(io.BytesIO(made.body)).height == 500
    assert (stub.downloads(), resizes) == (1, [500])


async def test_a_failure_reaches_every_waiter_and_is_not_cached(stub: Stub, client_for):
    # Negative caching and retries (tests/test_faults.py) are off: this is the coalescer alone.
    client = await client_for(stub.settings(error_ttl=0, retries=0))
    pipeline = pipeline_of(client)
    await pipeline.today()
    image = stub.hold(stub.feed_images[0])
    stub.fail("image", 500)

    requests = [asyncio.create_task(client.get("/wallpaper")) for _ in range(20)]
    await until(lambda: waiters_of(pipeline, "wallpaper:") == 20)
    image.set()
    responses = await asyncio.gather(*requests)

    assert [r.status for r in responses] == [502] * 20
    assert {(await r.json())["error"] for r in responses} == {"bad_upstream"}
    assert stub.downloads() == 1
    assert pipeline.in_flight() == {}

    stub.faults.clear()
    retry = await client.get("/wallpaper")
    assert retry.status == 200
    assert stub.downloads() == 2


async def test_a_failed_list_reaches_every_waiter_then_is_retried(stub: Stub, client_for):
    client = await client_for(stub.settings(error_ttl=0, retries=0))
    pipeline = pipeline_of(client)
    feed = stub.hold("feed")
    stub.fail("feed", 500)

    waiters = [asyncio.create_task(pipeline.today()) for _ in range(10)]
    await until(lambda: waiters_of(pipeline, "list:") == 10)
    feed.set()
    outcomes = await asyncio.gather(*waiters, return_exceptions=True)

    assert all(isinstance(outcome, BadUpstream) for outcome in outcomes)
    assert stub.calls["feed"] == 1
    stub.faults.clear()
    today, served = await pipeline.today()
    assert (served, stub.calls["feed"]) == (Served.MISS, 2)
    assert len(today.listing.photos) == len(stub.feed_images)


async def test_different_keys_never_wait_on_each_other(stub: Stub, client_for):
    client = await client_for(stub.settings())
    pipeline = pipeline_of(client)
    await pipeline.today()
    slow = stub.hold(stub.feed_images[0])

    stuck = asyncio.create_task(pipeline.wallpaper(0, Spec(300)))
    await until(lambda: stub.calls[stub.feed_images[0]] == 1)
    other, served = await pipeline.wallpaper(1, Spec(300))  # completes while photo 0 is held

    assert served is Served.MISS
    assert Image.open(io.BytesIO(other.body)).height == 300
    assert not stuck.done()
    slow.set()
    await stuck
    assert pipeline.in_flight() == {}


async def test_list_expires_after_its_ttl(stub: Stub, client_for):
    client = await client_for(stub.settings(info_ttl=0.2, max_stale=0))
    pipeline = pipeline_of(client)
    _, first = await pipeline.today()
    _, second = await pipeline.today()
    assert (first, second, stub.calls["feed"]) == (Served.MISS, Served.HIT, 1)

    await until(lambda: pipeline.cache.peek(NEWEST_KEY) is None)
    _, third = await pipeline.today()
    # The first fetch, the refresh made just before it fell due (a request had asked for it),
    # and, once that expired unasked, a fetch on the next request.
    assert (third, stub.calls["feed"]) == (Served.MISS, 3)


async def test_wallpapers_are_keyed_by_photo_identity_not_position(stub: Stub, client_for):
    client = await client_for(stub.settings(info_ttl=0.2, max_stale=0))
    pipeline = pipeline_of(client)
    old_first, newcomer = stub.feed_images[0], stub.images_not_in_feed()[0]
    before, _ = await pipeline.wallpaper(0, Spec(200))

    stub.feed_images = [newcomer, *stub.feed_images]  # a new photo arrives at the top
    await until(lambda: pipeline.cache.peek(NEWEST_KEY) is None)
    now_first, served_first = await pipeline.wallpaper(0, Spec(200))
    now_second, served_second = await pipeline.wallpaper(1, Spec(200))

    assert now_first != before
    assert served_first is Served.MISS
    assert (now_second, served_second) == (before, Served.HIT)
    assert stub.calls[old_first] == 1
    assert stub.calls[newcomer] == 1
