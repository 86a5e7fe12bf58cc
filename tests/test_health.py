"""`/healthz`: ok and idle, never stored; degraded while NASA fails (said once in the log,
and once again when it answers) or while Redis cannot be reached."""

from __future__ import annotations

import logging

from aiohttp import web

from marsserver import Settings, create_app

from .helpers import Clock, Down, pipeline_of, until
from .redis_server import free_port
from .stub import Stub


async def test_healthz_is_ready_and_idle(demo_client):
    response = await demo_client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "upstream": "ok",
                                     "upstream_budget": "ok", "source": "demo",
                                     "in_flight": 0}


async def test_health_is_never_stored(demo_client):
    """A cache in front must not answer a health check for the instance: each check asks it."""
    for method in ("GET", "HEAD"):
        response = await demo_client.request(method, "/healthz")
        assert (response.status, response.headers["Cache-Control"]) == (200, "no-store")


async def test_health_says_degraded_while_the_upstream_fails(app_for):
    client = await app_for(Down())
    assert (await client.get("/api/photos")).status == 502
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "degraded", "upstream": "failing",
                                     "upstream_budget": "ok", "source": "down", "in_flight": 0}


async def test_health_says_when_nasa_fails_and_the_log_says_it_once(stub: Stub, client_for,
                                                                    clock: Clock, caplog):
    caplog.set_level(logging.INFO, logger="marsserver")
    client = await client_for(stub.settings(info_ttl=60, error_ttl=1, retries=0))
    assert (await (await client.get("/healthz")).json())["upstream"] == "ok"
    await client.get("/api/photos")
    stub.fail("feed", 500)
    clock.now += 61
    for _ in range(3):
        await client.get("/api/photos")  # stale, one refresh at a time, each failing
        await until(lambda: not pipeline_of(client).background)
        clock.now += 2  # past --error-ttl: the next stale request tries NASA again
    health = await (await client.get("/healthz")).json()
    assert (health["status"], health["upstream"]) == ("degraded", "failing")
    assert stub.calls["feed"] == 4
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING
                and "feed is failing" in r.getMessage()]
    assert len(warnings) == 1
    assert "--source demo" in warnings[0].getMessage()

    stub.faults.clear()
    await client.get("/api/photos")
    await until(lambda: not pipeline_of(client).background)
    health = await (await client.get("/healthz")).json()
    assert (health["status"], health["upstream"]) == ("ok", "ok")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # one for the outage, from the layer that says what it means
    assert [r.getMessage() for r in caplog.records if "answers again" in r.getMessage()
            and r.name == "marsserver.core.pipeline"] == ["the msl feed answers again"]


async def test_an_unreachable_redis_shows_as_degraded_from_the_start(aiohttp_client):
    app: web.Application = create_app(Settings(source="demo",
                                               cache=f"redis://127.0.0.1:{free_port()}/0"))
    client = await aiohttp_client(app)
    health = await (await client.get("/healthz")).json()
    assert (health["status"], health["upstream"]) == ("degraded", "ok")
