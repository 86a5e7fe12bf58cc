"""The upstream budget (`--upstream-budget`): at most N calls a minute to the source, shared by
every instance on one Redis; when it is spent, what the cache holds still answers and what
needs NASA gets a JSON 503 with `Retry-After`; the newest list has first call."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import redis.asyncio as redis
from yarl import URL

from marsserver import Settings
from marsserver.core.budget import Budget, Draw, LocalBucket, first_call
from marsserver.core.redis_cache import SharedCache
from marsserver.core.shared_budget import SharedBucket
from marsserver.errors import BudgetSpent
from marsserver.metrics import Metrics
from marsserver.upstream import Upstream

from .helpers import Client, Clock, pipeline_of, until
from .redis_server import free_port
from .stub import Stub

WALLPAPER = "/wallpaper?photo_number=0&height=64"
FEED = "https://mars.nasa.gov/api/v1/raw_image_items/"
IMAGE = "https://mars.nasa.gov/msl-raw-images/a.jpg"
NEWEST = 5000  # the newest sol the stub's feed names
MakeClient = Callable[[Settings], Awaitable[Client]]


class Hand:
    """A monotonic clock that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def refused(budget: Budget, kind: str = "list") -> BudgetSpent:
    with pytest.raises(BudgetSpent) as error:
        await budget.spend(kind)
    return error.value


# Point 1: N calls a minute, a reserve for the newest list, 0 for unlimited -------------------


async def test_the_budget_lets_n_calls_a_minute_through_and_keeps_a_reserve_for_the_newest():
    """10 a minute: a burst of 9 passes, the 10th token is the newest list's alone, and each
    refusal says how long until a token comes (6 s at 10 a minute)."""
    clock = Hand()
    budget = Budget(10, Metrics(), clock=clock)
    assert (budget.reserve, budget.left()) == (1, 9)
    for _ in range(9):
        await budget.spend("list")
    assert budget.left() == 0
    assert (await refused(budget, "image")).retry_after == 6
    with first_call():
        await budget.spend("list")  # the reserve
        assert (await refused(budget)).retry_after == 6
    clock.now += 6  # one token back: the reserve again, not enough for a crawler
    assert (await refused(budget)).retry_after == 6
    clock.now += 6
    await budget.spend("image")
    clock.now += 3600  # a full bucket holds 10, however long it rested
    for _ in range(9):
        await budget.spend("list")
    await refused(budget)


async def test_a_budget_of_zero_is_unlimited():
    budget = Budget(0, Metrics())
    for _ in range(10_000):
        await budget.spend("image")
    assert (budget.left(), budget.exhausted) == (math.inf, False)


@pytest.mark.parametrize(("calls", "reserve"), [(1, 0), (2, 1), (10, 1), (300, 30)])
def test_the_reserve_is_a_tenth_and_never_the_whole_budget(calls, reserve):
    assert Budget(calls, Metrics()).reserve == reserve


def test_the_budget_is_a_setting_of_the_command_line_and_the_environment():
    assert Settings().upstream_budget == 300
    assert Settings.from_env({"MARS_UPSTREAM_BUDGET": "10"}).upstream_budget == 10
    assert Settings.from_strings({"upstream_budget": "0"}).upstream_budget == 0
    with pytest.raises(ValueError, match="upstream_budget must be >= 0"):
        Settings(upstream_budget=-1)
    with pytest.raises(ValueError, match="--upstream-budget / MARS_UPSTREAM_BUDGET: 'ten'"):
        Settings.from_strings({"upstream_budget": "ten"})


async def test_every_attempt_is_a_call_retries_and_redirect_hops_included(
        session: aiohttp.ClientSession, mock_nasa: Any):
    """Budget 4 (one in reserve): a feed failing with 500s gets three attempts of the five
    retries allow, then the refusal, which asks nothing of NASA; an image behind a redirect
    is two calls, so one token cannot fetch it."""
    upstream = Upstream(session, ("mars.nasa.gov",), max_bytes=1000, retries=5, backoff=0.001,
                        budget=Budget(4, Metrics()))
    mock_nasa.get(FEED, status=500, repeat=True)
    with pytest.raises(BudgetSpent):
        await upstream.get_json(FEED, {})
    assert len(mock_nasa.requests[("GET", URL(FEED))]) == 3
    mock_nasa.get(IMAGE, status=302, headers={"Location": "/b.jpg"})
    with first_call(), pytest.raises(BudgetSpent):  # the reserve: one call, not two
        await upstream.get_image(IMAGE)
    assert len(mock_nasa.requests[("GET", URL(IMAGE))]) == 1


# Point 2: a spent budget, as clients and operators see it ------------------------------------


async def test_a_spent_budget_is_a_json_503_with_retry_after_and_the_cache_still_answers(
        client_for: MakeClient, stub: Stub, caplog: pytest.LogCaptureFixture):
    """Budget 4 (one in reserve): the newest list, an image and one sol; the next sols get a
    503 saying when to come back, never a 502; the cached wallpaper and sol still answer; one
    WARNING for the episode, none saying NASA failed; health and metrics say so."""
    stub.each_sol(NEWEST)
    client = await client_for(stub.settings(upstream_budget=4))
    assert (await client.get(WALLPAPER)).status == 200
    assert (await client.get("/api/photos?sol=4990")).status == 200
    caplog.set_level(logging.INFO)
    for sol in (4991, 4992, 4993):
        response = await client.get(f"/api/photos?sol={sol}")
        assert response.status == 503
        assert (await response.json())["error"] == "upstream_budget_spent"
        assert 1 <= int(response.headers["Retry-After"]) <= 15  # a token every 15 s
        assert (await client.get(WALLPAPER)).status == 200
        assert (await client.get("/api/photos?sol=4990")).status == 200
    assert (stub.calls["feed"], stub.downloads()) == (2, 1)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "upstream budget of 4 calls a minute is spent" in warnings[0]
    health = await (await client.get("/healthz")).json()
    assert (health["status"], health["upstream"], health["upstream_budget"]) == (
        "degraded", "ok", "exhausted")
    metrics = (await (await client.get("/metrics")).read()).decode()
    assert 'marsserver_upstream_budget_refused_total{call="other",kind="list"} 3.0' in metrics
    left = re.search(r"^marsserver_upstream_budget_left ([0-9.e+-]+)$", metrics, re.M)
    assert left is not None
    assert float(left[1]) < 0.1


async def test_a_spent_budget_still_serves_the_stale_list(
        client_for: MakeClient, stub: Stub, clock: Clock, caplog: pytest.LogCaptureFixture):
    """Budget 1: the newest list took it. Past its freshness the list is served stale (its
    refresh refused in the background), and an image it names is a 503, not a 502. NASA
    did not fail: neither health nor the log says it did."""
    client = await client_for(stub.settings(upstream_budget=1))
    assert (await client.get("/api/photos")).status == 200
    assert (await client.get(WALLPAPER)).status == 503
    clock.now += 301
    for _ in range(3):
        response = await client.get("/api/photos")
        assert (response.status, response.headers["X-Cache"]) == (200, "STALE")
        await until(lambda: not pipeline_of(client).background)
    assert (stub.calls["feed"], stub.downloads()) == (1, 0)
    health = await (await client.get("/healthz")).json()
    assert (health["upstream"], health["upstream_budget"]) == ("ok", "exhausted")
    assert not any("failing" in record.getMessage() for record in caplog.records)


async def test_the_newest_list_has_first_call_on_a_budget_a_crawler_spent(
        client_for: MakeClient, stub: Stub, clock: Clock):
    """A crawler spends all it may; the newest list's refresh still gets its call."""
    stub.each_sol(NEWEST)
    client = await client_for(stub.settings(upstream_budget=10))
    assert (await client.get("/api/photos")).status == 200
    statuses = [(await client.get(f"/api/photos?sol={sol}")).status for sol in range(4980, 4990)]
    assert statuses == [200] * 8 + [503] * 2
    clock.now += 301
    assert (await client.get("/api/photos")).headers["X-Cache"] == "STALE"
    await until(lambda: not pipeline_of(client).background)
    assert stub.calls["feed"] == 10
    response = await client.get("/api/photos")
    assert (response.status, response.headers["X-Cache"]) == (200, "HIT")


async def test_requests_coalesced_on_a_refused_call_share_its_one_answer(
        client_for: MakeClient, stub: Stub, monkeypatch: pytest.MonkeyPatch):
    """Five requests for one sol wait on one flight: the budget is asked once, and all five
    get its 503."""
    stub.each_sol(NEWEST)
    client = await client_for(stub.settings(upstream_budget=10))
    assert (await client.get("/api/photos")).status == 200
    gate, asked = asyncio.Event(), []

    async def spent(_: LocalBucket, floor: int) -> Draw:
        asked.append(floor)
        await gate.wait()
        return Draw(0.0, 4.5)

    monkeypatch.setattr(LocalBucket, "take", spent)
    waiting = [asyncio.ensure_future(client.get("/api/photos?sol=4990")) for _ in range(5)]
    await until(lambda: pipeline_of(client).in_flight().get("list:sol=4990&camera=") == 5)
    gate.set()
    responses = await asyncio.gather(*waiting)
    assert [(r.status, r.headers["Retry-After"]) for r in responses] == [(503, "5")] * 5
    assert asked == [1]
    assert stub.calls["feed"] == 1


# Point 3: one budget across instances on one Redis; each its own while Redis is down ----------


async def test_two_instances_on_one_redis_spend_one_budget_a_crawler_cannot_pass(
        client_for: MakeClient, stub: Stub, redis_url: str):
    """Budget 10 on two instances: a wallpaper is made (the newest list and an image), then a
    crawler walks 31 sols across both. NASA sees at most 10 calls (plus what the bucket
    regains while the walk lasts, one per 6 s); every other sol is a 503 with Retry-After;
    the wallpaper answers 200 on both instances throughout."""
    stub.each_sol(NEWEST)
    instances = [await client_for(stub.settings(cache=redis_url, upstream_budget=10))
                 for _ in range(2)]
    started = time.monotonic()
    assert (await instances[0].get(WALLPAPER)).status == 200
    statuses = []
    for step, sol in enumerate(range(NEWEST - 31, NEWEST)):
        response = await instances[step % 2].get(f"/api/photos?sol={sol}")
        statuses.append(response.status)
        if response.status == 503:
            assert (await response.json())["error"] == "upstream_budget_spent"
            assert int(response.headers["Retry-After"]) >= 1
        for instance in instances:
            assert (await instance.get(WALLPAPER)).status == 200
    regained = int((time.monotonic() - started) / 6)
    assert sum(stub.calls.values()) <= 10 + regained
    assert set(statuses) == {200, 503}
    assert statuses.count(200) == stub.calls["feed"] - 1  # every sol asked NASA, or was refused


async def test_with_redis_down_each_instance_spends_a_budget_of_its_own(
        client_for: MakeClient, stub: Stub):
    """Budget 3 (one in reserve), Redis unreachable: each instance makes its own two calls,
    the newest list and a sol, and refuses the next; one shared bucket would have let three
    through in all."""
    stub.each_sol(NEWEST)
    down = f"redis://127.0.0.1:{free_port()}/0"
    for instance in [await client_for(stub.settings(cache=down, upstream_budget=3))
                     for _ in range(2)]:
        assert (await instance.get("/api/photos?sol=4990")).status == 200
        assert (await instance.get("/api/photos?sol=4991")).status == 503
    assert stub.calls["feed"] == 4


def shared_budget(client: redis.Redis, prefix: str, calls: int, **options: Any) -> Budget:
    cache = SharedCache(client, None, None, prefix, timeout=5.0)  # type: ignore[arg-type]
    return Budget(calls, Metrics(), SharedBucket(cache, calls, **options), **options)


async def test_the_shared_bucket_is_one_per_deployment_prefix_and_expires_when_full(
        redis_url: str):
    """Two budgets with one prefix draw from one bucket; another prefix has its own. The
    bucket is one key under its prefix that Redis drops once it would be full again."""
    client = redis.Redis.from_url(redis_url)
    one, two, other = (shared_budget(client, prefix, 4) for prefix in ("a", "a", "b"))
    await one.spend("list")
    await two.spend("image")
    await one.spend("list")
    assert 14 <= (await refused(two)).retry_after <= 15  # 2 tokens wanted, 1 left, 4 a minute
    with first_call():
        await two.spend("list")
    for _ in range(3):
        await other.spend("list")
    assert sorted(await client.keys("*")) == [b"a:upstream-budget", b"b:upstream-budget"]
    assert 0 < await client.pttl("a:upstream-budget") <= 60_000
    await client.aclose()


async def test_the_shared_bucket_refills_on_redis_clock(redis_url: str):
    """Two calls per 0.2 s: the one ordinary call passes, the next waits for Redis's clock."""
    client = redis.Redis.from_url(redis_url)
    budget = shared_budget(client, "a", 2, period=0.2)
    await budget.spend("list")
    assert (await refused(budget)).retry_after == 1
    async with asyncio.timeout(5):
        while True:  # polling Redis's clock, an outside process's
            try:
                await budget.spend("list")
                break
            except BudgetSpent:
                await asyncio.sleep(0.01)
    await client.aclose()
