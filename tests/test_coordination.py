"""The coordination layer under faults: one fill path, data not code in Redis, failures that
reach every waiter and expire, slow Redis that is only slow, clean answers on cancellation.

Each test is one scenario an independent review of this layer found, kept as the scenario
that showed it, run against real aiohttp apps and, where Redis is part of it, real
`redis-server`s. A `Gated` source (tests/helpers.py) stands in for NASA: it counts calls and
holds answers until the test lets them go.
"""

from __future__ import annotations

import asyncio
import io
import pickle
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis
from aiohttp import web
from PIL import Image

from marsserver import Settings, create_app
from marsserver.core.entries import Failure
from marsserver.core.pipeline import FAILED, MAX_FAILURE_TTL, NEWEST_KEY, Pipeline, Served
from marsserver.core.redis_cache import STRIKES, SharedCache, Unreachable
from marsserver.errors import BadUpstream, Overloaded, ServiceError, Unavailable
from marsserver.imaging import Spec

from .helpers import Client, Gated, pipeline_of, until
from .slowproxy import SlowProxy


async def stale(*pipelines: Pipeline) -> None:
    """Wait (on the clock, not a guess) until each instance's list is past `info_ttl`."""
    await until(lambda: all(p.list_fresh_for() <= 0 for p in pipelines))


# One path and one lock order for every fill ------------------------------------------------

async def test_a_refresh_and_a_request_share_one_flight_and_never_deadlock(app_for, redis_url,
                                                                          clock):
    """A refresh holding the lease while a request needs the list (the list left memory)."""
    source = Gated()
    client = await app_for(source, cache=redis_url, info_ttl=30, max_stale=30, lease=0.5,
                           redis_timeout=0.25, timeout=0.5, retries=0)
    pipeline = pipeline_of(client)
    await pipeline.today()
    clock.now += 31
    gate = source.hold("list")
    _, served = await pipeline.today()  # serves stale, starts the refresh
    assert served is Served.STALE
    await until(lambda: source.calls["list"] == 2)  # the refresh holds the lease and calls NASA
    await pipeline.cache.front.delete(NEWEST_KEY)  # the list leaves this instance's memory
    request = asyncio.create_task(pipeline.today())
    await until(lambda: pipeline.in_flight().get(NEWEST_KEY) == 2)  # joined the refresh's flight
    gate.set()
    async with asyncio.timeout(5):
        _, served = await request
    assert (served, source.calls["list"]) == (Served.COALESCED, 2)
    assert pipeline.list_fresh_for() > 0


async def test_one_staleness_costs_one_list_call_across_instances(app_for, redis_url, clock):
    """The loser of the refresh lease finds the winner's list instead of fetching again."""
    source = Gated()
    clients = [await app_for(source, cache=redis_url, info_ttl=30) for _ in range(3)]
    pipelines = [pipeline_of(c) for c in clients]
    for pipeline in pipelines:
        await pipeline.today()  # the first fetches, the others read it from Redis
    assert source.calls["list"] == 1
    clock.now += 31
    gate = source.hold("list")
    for pipeline in pipelines:
        assert (await pipeline.today())[1] is Served.STALE
    await until(lambda: source.calls["list"] == 2)
    gate.set()
    await until(lambda: not any(p.background for p in pipelines))
    assert source.calls["list"] == 2
    assert [(await p.today())[1] for p in pipelines] == [Served.HIT] * 3


async def test_a_list_another_instance_refreshed_is_shared_not_stale_nor_a_hit(app_for,
                                                                             redis_url, clock):
    """Found in Redis, fresh, after another instance refreshed it: nothing was done here, and
    it did not come from this instance's memory either."""
    source = Gated()
    one, two = [pipeline_of(await app_for(source, cache=redis_url, info_ttl=30))
                for _ in range(2)]
    assert [(await p.today())[1] for p in (one, two)] == [Served.MISS, Served.SHARED]
    clock.now += 31
    assert (await one.today())[1] is Served.STALE
    await until(lambda: not one.background)  # one's refresh stored the new list in Redis
    assert (await two.today())[1] is Served.SHARED
    assert source.calls["list"] == 2
    assert 'cache="list",result="shared"} 2.0' in two.metrics.render().decode()


# What Redis holds is data, not code --------------------------------------------------------

class _Planted:
    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(__file__).parent / "PLANTED",))


@pytest.mark.parametrize("planted", [pickle.dumps(_Planted()), b"garbage", b"marsserver/2\n{"
                                     + b"[" * 100_000, b'marsserver/2\n{"kind":"list"}\n'])
async def test_a_planted_value_is_a_miss_never_code(app_for, redis_url, planted, caplog):
    """Nothing read from Redis is unpickled; what does not parse is a miss, logged once."""
    source, reader = await planted_list(app_for, redis_url, lambda _: planted)
    responses = [await reader.get("/api/photos") for _ in range(3)]
    assert [r.status for r in responses] == [200] * 3
    assert not (Path(__file__).parent / "PLANTED").exists()
    assert source.calls["list"] == 2  # the planted value was a miss, then ours replaced it
    assert sum("unreadable Redis entry" in r.message for r in caplog.records) == 1


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


async def planted_list(app_for: Callable[..., Awaitable[Client]], redis_url: str,
                       change: Callable[[bytes], bytes]) -> tuple[Gated, Client]:
    """Two instances on one Redis; the list the first stored there is then `change`d."""
    source = Gated()
    writer = await app_for(source, cache=redis_url)
    reader = await app_for(source, cache=redis_url)
    assert (await writer.get("/api/photos")).status == 200
    shared = redis.Redis.from_url(redis_url)
    (key,) = await shared.keys("*:list:sol=latest*")
    await shared.set(key, change(await shared.get(key)), px=60_000)
    await shared.aclose()
    return source, reader


# Deployments sharing a Redis stay apart ----------------------------------------------------

async def test_two_deployments_on_one_redis_read_only_their_own_lists(aiohttp_client, redis_url):
    """A Curiosity and a Perseverance deployment, and two mounts of one app."""
    curiosity, perseverance = Gated(photos=1), Gated(photos=3)
    host = web.Application()
    host.add_subapp("/a/", create_app(Settings(source="demo", cache=redis_url), source=curiosity))
    host.add_subapp("/b/", create_app(Settings(source="demo", rover="perseverance",
                                               cache=redis_url), source=perseverance))
    client = await aiohttp_client(host)
    a = await (await client.get("/a/api/photos")).json()
    b = await (await client.get("/b/api/photos")).json()
    assert (a["count"], b["count"]) == (1, 3)
    assert b["photos"][0]["wallpaper_url"].startswith("/b/")
    keys = await redis.Redis.from_url(redis_url).keys("*:list:sol=latest*")
    assert len(keys) == 2


# A cold instance rides out an outage -------------------------------------------------------

async def test_a_cold_instance_serves_the_stale_list_redis_holds(app_for, redis_url):
    """The remembered failure must not hide a list another instance stored."""
    source = Gated()
    warm = await app_for(source, cache=redis_url, info_ttl=0.2, error_ttl=60, retries=0)
    assert (await warm.get("/api/photos")).status == 200
    source.fail["list"] = BadUpstream("NASA is down")
    await until(lambda: pipeline_of(warm).list_fresh_for() <= 0)
    assert (await warm.get("/api/photos")).headers["X-Cache"] == "STALE"
    await until(lambda: pipeline_of(warm).upstream_failing())

    cold = await app_for(source, cache=redis_url, info_ttl=0.2, error_ttl=60, retries=0)
    response = await cold.get("/api/photos")
    assert (response.status, response.headers["X-Cache"]) == (200, "STALE")
    assert (await cold.get("/wallpaper?height=64")).status == 200
    assert source.calls["list"] == 2  # one good fetch, one failed refresh: remembered since


# Failures are remembered briefly and once --------------------------------------------------

async def test_a_huge_retry_after_is_capped(app_for, redis_url):
    """A Retry-After of 999999 s must not block a key for days, across restarts."""
    source = Gated()
    source.fail["list"] = Unavailable("NASA asks us to wait", retry_after=999_999)
    client = await app_for(source, cache=redis_url)
    assert (await client.get("/api/photos")).status == 503
    shared = redis.Redis.from_url(redis_url)
    (key,) = await shared.keys("*failed:list:sol=latest*")
    assert MAX_FAILURE_TTL * 1000 - 5000 < await shared.pttl(key) <= MAX_FAILURE_TTL * 1000
    assert MAX_FAILURE_TTL == 3600
    await shared.aclose()


async def test_a_derived_failure_expires_with_its_cause(app_for):
    """A wallpaper that failed because its source failed is remembered no longer."""
    source = Gated()
    client = await app_for(source, error_ttl=60)
    pipeline = pipeline_of(client)
    await pipeline.today()
    source.fail["image"] = BadUpstream("image host broke")
    assert (await client.get("/wallpaper?height=100")).status == 502
    source_failure, = (v for k, v in pipeline.cache.view().items()
                       if k.startswith(FAILED + "source:"))
    await asyncio.sleep(0.01)  # the wallpaper is asked again later: its record must not be new
    assert (await client.get("/wallpaper?height=100")).status == 502
    derived, = (v for k, v in pipeline.cache.view().items()
                if k.startswith(FAILED + "wallpaper:"))
    assert isinstance(derived, Failure)
    assert derived.until == source_failure.until
    assert source.calls["image"] == 1


# Failures reach every waiter, in every process ---------------------------------------------

@pytest.mark.parametrize(("error", "settings"), [
    (BadUpstream("NASA 500"), {"error_ttl": 0}),
    (Overloaded("resize queue full", retry_after=1), {}),
    (RuntimeError("a bug"), {"error_ttl": 0}),
])
async def test_a_failure_not_remembered_still_reaches_followers_elsewhere(
        app_for, redis_url, error, settings):
    """Followers in other processes get the leader's failure; nobody repeats the call."""
    source = Gated()
    gate = source.hold("list")
    source.fail["list"] = error
    pipelines = [pipeline_of(await app_for(source, cache=redis_url, retries=0, **settings))
                 for _ in range(3)]
    calls = [asyncio.create_task(p.today()) for p in pipelines for _ in range(5)]
    await until(lambda: source.calls["list"] == 1
                and sum(sum(p.in_flight().values()) for p in pipelines) == 15)
    gate.set()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(outcome, ServiceError) for outcome in outcomes)
    assert len({type(outcome) for outcome in outcomes}) == 1
    assert source.calls["list"] == 1


async def test_an_unexpected_refresh_error_is_logged_remembered_and_retrieved(app_for, caplog):
    """Not "Task exception was never retrieved", and not one NASA call per stale request."""
    source = Gated()
    client = await app_for(source, info_ttl=0.2, error_ttl=60)
    pipeline = pipeline_of(client)
    await pipeline.today()
    source.fail["list"] = RuntimeError("a bug in the adapter")
    await stale(pipeline)
    for _ in range(5):
        assert (await client.get("/api/photos")).headers["X-Cache"] == "STALE"
        await until(lambda: not pipeline.background)
    assert source.calls["list"] == 2
    assert pipeline.upstream_failing()
    assert sum("a bug in the adapter" in str(r.exc_info) for r in caplog.records) == 1


# Work that started is finished and kept ----------------------------------------------------

async def test_a_resize_whose_waiters_all_left_is_finished_and_kept(app_for, resizes):
    """The thread cannot be stopped, so its result is stored, not thrown away."""
    source = Gated()
    pipeline = pipeline_of(await app_for(source))
    await pipeline.today()
    gate = source.hold("image")
    waiters = [asyncio.create_task(pipeline.wallpaper(0, Spec(300))) for _ in range(4)]
    await until(lambda: source.calls["image"] == 1)
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    assert all(waiter.cancelled() for waiter in waiters)
    gate.set()
    await until(lambda: not pipeline.background)
    made, served = await pipeline.wallpaper(0, Spec(300))
    assert served is Served.HIT
    assert Image.open(io.BytesIO(made.body)).height == 300
    assert (resizes, source.calls["image"]) == ([300], 1)
    assert pipeline.in_flight() == {}


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


# Cancellation from outside is a clean answer -----------------------------------------------

async def test_work_cancelled_from_outside_answers_every_waiter_with_a_json_503(app_for):
    """Shutdown (or an embedding app) cancels the work: clients get 503s, not resets."""
    source = Gated()
    client = await app_for(source)
    pipeline = pipeline_of(client)
    await pipeline.today()
    source.hold("image")
    requests = [asyncio.create_task(client.get("/wallpaper?height=200")) for _ in range(6)]
    await until(lambda: sum(n for key, n in pipeline.in_flight().items()
                            if key.startswith("wallpaper:")) == 6)
    await pipeline.background.close()  # what shutdown does to work in progress
    responses = await asyncio.gather(*requests)
    assert [r.status for r in responses] == [503] * 6
    assert {(await r.json())["error"] for r in responses} == {"unavailable"}
    assert {r.headers["Retry-After"] for r in responses} == {"1"}


# A slow Redis is slow, not down ------------------------------------------------------------

async def test_three_instances_on_a_redis_300ms_away_cost_one_list_and_one_download(
        app_for, redis_url, resizes):
    """Every Redis call takes 300 ms or more; nothing is declared down."""
    source = Gated()
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    proxy = await SlowProxy(port, delay=0.15).start()  # each way: 300 ms round trips
    try:
        clients = [await app_for(source, cache=proxy.url()) for _ in range(3)]
        burst = [asyncio.create_task(clients[n % 3].get("/wallpaper?height=360"))
                 for n in range(30)]
        responses = await asyncio.gather(*burst)
        assert [r.status for r in responses] == [200] * 30
        assert len({await r.read() for r in responses}) == 1
        assert (source.calls["list"], source.calls["image"], resizes) == (1, 1, [360])
        assert not any(pipeline_of(c).degraded for c in clients)
        await asyncio.gather(*(c.close() for c in clients))
    finally:
        await proxy.close()


async def test_one_slow_call_is_not_an_outage(redis_url):
    """Only connection errors, or STRIKES failures in a row, mean down."""
    cache = SharedCache(redis.Redis.from_url(redis_url), None, None, "t", timeout=0.05)  # type: ignore[arg-type]

    async def slow() -> None:
        await asyncio.sleep(1)

    for attempt in range(1, STRIKES + 1):
        with pytest.raises(Unreachable):
            await cache.call(slow)
        assert cache.degraded is (attempt == STRIKES)
    await cache.close()


# A list someone asked for is refreshed ahead -----------------------------------------------


async def test_a_list_someone_asked_for_is_refreshed_before_it_falls_stale(app_for):
    """Refresh ahead: a cache in front hides requests, so the service does not wait for one."""
    source = Gated()
    pipeline = pipeline_of(await app_for(source, info_ttl=0.4))
    first, _ = await pipeline.today()
    await until(lambda: source.calls["list"] == 2)  # 0.1 s before it would have gone stale
    await until(lambda: not pipeline.background)
    today, served = await pipeline.today()
    assert served is Served.HIT
    assert today.fetched_at > first.fetched_at


# No lease is left behind -------------------------------------------------------------------

async def lease_keys(shared: redis.Redis, stage: str) -> list[bytes]:
    return list(await shared.keys(f"*lease:{stage}:*"))


async def test_a_request_that_leaves_while_its_lease_is_asked_for_leaves_no_lease(
        app_for, redis_url):
    """The client hangs up after `SET ... NX` reached Redis and before its reply came back: the
    lease it won is released, so the next request (here, on another instance) does not wait
    out `--lease` for work nobody does."""
    source = Gated()
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    proxy = await SlowProxy(port, delay=0.15).start()
    shared = redis.Redis.from_url(redis_url)
    try:
        one, two = [pipeline_of(await app_for(source, cache=proxy.url(), lease=30))
                    for _ in range(2)]
        await one.wallpaper(0, Spec(301))  # the list and the source image are in Redis now
        await two.today()
        request = asyncio.create_task(one.wallpaper(0, Spec(300)))
        async with asyncio.timeout(10):  # Redis is a real process: poll it
            while not await lease_keys(shared, "wallpaper"):
                await asyncio.sleep(0.005)
        request.cancel()  # its reply is still on the way back
        await asyncio.gather(request, return_exceptions=True)
        async with asyncio.timeout(5):
            _, served = await two.wallpaper(0, Spec(300))
        assert served is Served.MISS
        assert await lease_keys(shared, "wallpaper") == []
    finally:
        await shared.aclose()
        await proxy.close()


async def test_a_request_while_this_instance_still_does_the_work_joins_it_without_a_lease(
        app_for, redis_url, resizes):
    """The work's first waiters left and its lease was lost (expired in a pause): a new
    request here joins the work running here instead of winning a second lease it would
    hold for nobody (Background.finish runs one task per key)."""
    source = Gated()
    shared = redis.Redis.from_url(redis_url)
    pipeline = pipeline_of(await app_for(source, cache=redis_url, lease=30))
    await pipeline.today()
    gate = source.hold("image")
    first = asyncio.create_task(pipeline.wallpaper(0, Spec(300)))
    await until(lambda: source.calls["image"] == 1)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    await shared.delete(*await lease_keys(shared, "wallpaper"))  # the lease is lost
    second = asyncio.create_task(pipeline.wallpaper(0, Spec(300)))
    await until(lambda: any(k.startswith("wallpaper:") for k in pipeline.in_flight()))
    gate.set()
    assert (await second)[1] in (Served.MISS, Served.COALESCED)
    await until(lambda: not pipeline.background)
    assert await lease_keys(shared, "wallpaper") == []
    assert (source.calls["image"], resizes) == (1, [300])
    await shared.aclose()


def lose_first_lease_reply(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The first `SET lease` of `pipeline` reaches Redis, but its reply never comes back (the
    call times out); the events of each `SET` are recorded."""
    client = pipeline.cache.client  # type: ignore[attr-defined]
    real, events = client.set, []

    async def set_with_lost_reply(*args: Any, **kwargs: Any) -> Any:
        events.append("sent")
        answer = await real(*args, **kwargs)
        if events.count("sent") == 1:
            try:
                await asyncio.Event().wait()
            finally:
                events.append("timed out")
        return answer

    monkeypatch.setattr(client, "set", set_with_lost_reply)
    return events


async def test_a_lease_request_that_timed_out_follows_the_leader_instead_of_leading_too(
        app_for, redis_url, monkeypatch):
    """Slow is not down: the instance whose lease request timed out asks again and finds the
    leader, rather than calling NASA a second time."""
    source = Gated()
    gate = source.hold("list")
    leader, late = [pipeline_of(await app_for(source, cache=redis_url, redis_timeout=0.3))
                    for _ in range(2)]
    events = lose_first_lease_reply(late, monkeypatch)
    leading = asyncio.create_task(leader.today())
    await until(lambda: source.calls["list"] == 1)
    following = asyncio.create_task(late.today())
    await until(lambda: "timed out" in events)
    await until(lambda: events.count("sent") == 2 or source.calls["list"] == 2)
    gate.set()
    assert [served for _, served in await asyncio.gather(leading, following)] == [
        Served.MISS, Served.SHARED]
    assert source.calls["list"] == 1


async def test_a_lease_won_by_a_request_whose_reply_was_lost_is_still_ours(
        app_for, redis_url, monkeypatch):
    """Asked again with the same token, Redis names us: no waiting out our own lease."""
    source = Gated()
    pipeline = pipeline_of(await app_for(source, cache=redis_url, redis_timeout=0.3, lease=30))
    events = lose_first_lease_reply(pipeline, monkeypatch)
    async with asyncio.timeout(5):
        assert (await pipeline.today())[1] is Served.MISS
    assert (events, source.calls["list"]) == (["sent", "timed out", "sent"], 1)
    shared = redis.Redis.from_url(redis_url)
    assert await lease_keys(shared, "list") == []
    await shared.aclose()


async def test_a_redis_call_cancelled_as_its_reply_arrives_stays_cancelled(redis_url):
    """`asyncio.wait_for` on Python 3.11 returns a result that arrived in the same loop pass
    as the caller's cancellation, and the caller carries on as if never cancelled."""
    cache = SharedCache(redis.Redis.from_url(redis_url), None, None, "t", timeout=5)  # type: ignore[arg-type]
    asked, reply = asyncio.Event(), asyncio.Event()

    async def answer() -> str:
        asked.set()
        await reply.wait()
        return "the reply"

    caller = asyncio.create_task(cache.call(answer))
    await asked.wait()  # the call now waits for its reply
    reply.set()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await cache.close()


async def test_a_failure_published_for_followers_never_replaces_a_remembered_one(
        app_for, redis_url):
    """Two leaders of one key (a lease lost in a pause): one fails and is remembered, the
    other fails with what is not remembered (a full resize queue, here its source). The
    remembered failure must still hold every instance off NASA."""
    source = Gated()
    late, third = [pipeline_of(await app_for(source, cache=redis_url, retries=0))
                   for _ in range(2)]
    await late.today()
    gate = source.hold("image")
    source.fail["image"] = Overloaded("too many downloads", retry_after=1)
    leading = asyncio.create_task(late.wallpaper(0, Spec(300)))
    await until(lambda: source.calls["image"] == 1)
    source_key = FAILED + "source:https://mars.nasa.gov/img/0.jpg"
    other_leader = Failure("bad_upstream", "NASA answered HTTP 500", until=time.time() + 60)
    await late.cache.set(source_key, other_leader, ttl=60)  # type: ignore[arg-type]
    await late.cache.front.delete(source_key)  # as if stored by another instance
    gate.set()
    with pytest.raises(Overloaded):
        await leading
    with pytest.raises(BadUpstream):
        await third.wallpaper(0, Spec(300))
    assert source.calls["image"] == 1
