"""`/metrics` in Prometheus format, and `X-Cache`: they tell what really happened."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from marsserver import Settings, create_app

from .helpers import Clock, pipeline_of, until
from .stub import Stub


async def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(await response.text())
            for sample in family.samples}


async def test_metrics_count_a_cold_burst_exactly(stub: Stub, client_for):
    client = await client_for(stub.settings())
    pipeline = pipeline_of(client)
    held = stub.hold(stub.feed_images[0])
    burst = [asyncio.create_task(client.get("/wallpaper?height=120")) for _ in range(10)]
    await until(lambda: 10 in [n for k, n in pipeline.in_flight().items() if k[:4] == "wall"])
    during = await scrape(client)
    held.set()
    responses = await asyncio.gather(*burst)
    hit = await client.get("/wallpaper?height=120")

    assert sorted(r.headers["X-Cache"] for r in responses) == ["COALESCED"] * 9 + ["MISS"]
    assert hit.headers["X-Cache"] == "HIT"
    assert during[("marsserver_inflight", (("stage", "wallpaper"),))] == 1
    assert during[("marsserver_inflight", (("stage", "source"),))] == 1
    after = await scrape(client)
    expected = {
        ("marsserver_upstream_requests_total",
         (("kind", "list"), ("source", "msl"), ("status", "200"))): 1,
        ("marsserver_upstream_requests_total",
         (("kind", "image"), ("source", "msl"), ("status", "200"))): 1,
        ("marsserver_cache_requests_total", (("cache", "wallpaper"), ("result", "miss"))): 10,
        ("marsserver_cache_requests_total", (("cache", "wallpaper"), ("result", "hit"))): 1,
        ("marsserver_cache_requests_total", (("cache", "source"), ("result", "miss"))): 1,
        ("marsserver_coalesced_waiters_total", (("stage", "wallpaper"),)): 9,
        ("marsserver_resizes_total", ()): 1,
        ("marsserver_resize_seconds_count", ()): 1,
        ("marsserver_inflight", (("stage", "wallpaper"),)): 0,
        ("marsserver_resize_queue_depth", ()): 0,
    }
    assert {key: after.get(key) for key in expected} == expected


async def test_upstream_failures_are_counted_by_status(stub: Stub, client_for):
    client = await client_for(stub.settings(retries=1, error_ttl=0))
    stub.fail("feed", 503)
    assert (await client.get("/")).status == 502
    samples = await scrape(client)
    key = (("kind", "list"), ("source", "msl"), ("status", "503"))
    assert samples[("marsserver_upstream_requests_total", key)] == 2


async def test_stale_lists_are_counted_as_stale(stub: Stub, client_for, clock: Clock):
    client = await client_for(stub.settings(info_ttl=60))
    await client.get("/")
    clock.now += 61
    assert (await client.get("/")).headers["X-Cache"] == "STALE"
    await until(lambda: not pipeline_of(client).background)  # the refresh it started is done
    samples = await scrape(client)
    list_results = {labels: n for (name, labels), n in samples.items()
                    if name == "marsserver_cache_requests_total" and ("cache", "list") in labels}
    assert list_results == {(("cache", "list"), ("result", "miss")): 1,
                            (("cache", "list"), ("result", "hit")): 0,
                            (("cache", "list"), ("result", "stale")): 1,
                            (("cache", "list"), ("result", "shared")): 0}


async def test_each_app_counts_for_itself(aiohttp_client):
    one = await aiohttp_client(create_app(Settings(source="demo")))
    two = await aiohttp_client(create_app(Settings(source="demo")))
    await one.get("/wallpaper?height=50")
    key = ("marsserver_resizes_total", ())
    assert ((await scrape(one))[key], (await scrape(two))[key]) == (1, 0)


def test_a_hit_count_for_an_unknown_stage_is_refused_where_it_is_asked_for():
    """Not later, when every scrape of /metrics would fail on it."""
    from marsserver.metrics import Metrics

    with pytest.raises(ValueError, match="unknown stages"):
        Metrics().lookups.hits_at("list", "wallpapers")
