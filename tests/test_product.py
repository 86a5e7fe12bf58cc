"""What a person, a cache or an API client meets: permalinks, preconditions, honest health,
readable failures (issue: a product people trust at first sight)."""

from __future__ import annotations

import logging

from aiohttp import web
from pytest_aiohttp import AiohttpClient

from marsserver import Settings, create_app

from .helpers import Clock, pipeline_of, until
from .redis_server import free_port
from .stub import Stub

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


async def test_a_permalink_is_cacheable_forever_and_answers_conditional_requests(demo_client):
    photo = (await (await demo_client.get("/api/photos")).json())["photos"][1]
    url = photo["permalink"] + "?preset=720p&format=png"
    made = await demo_client.get(url)
    assert made.status == 200
    assert made.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert made.headers["Last-Modified"] == "Mon, 01 Jan 2024 12:07:00 GMT"  # the photo's own
    assert made.headers["Content-Type"] == "image/png"
    etag = made.headers["ETag"]
    assert etag.startswith('"')  # strong: no W/

    for conditional in ({"If-None-Match": etag}, {"If-None-Match": f'W/{etag}, "x"'},
                        {"If-Modified-Since": "Mon, 01 Jan 2024 12:07:00 GMT"},
                        {"If-Modified-Since": "Tue, 02 Jan 2024 00:00:00 GMT"}):
        answer = await demo_client.get(url, headers=conditional)
        assert (answer.status, await answer.read()) == (304, b""), conditional
    older = await demo_client.get(url, headers={"If-Modified-Since":
                                                 "Sun, 31 Dec 2023 00:00:00 GMT"})
    assert older.status == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)
    both = await demo_client.get(url, headers={"If-None-Match": '"other"',
                                               "If-Modified-Since": made.headers["Last-Modified"]})
    assert both.status == 200


async def test_if_match_naming_another_version_is_a_412(demo_client):
    made = await demo_client.get("/api/photos")
    etag = made.headers["ETag"]
    assert (await demo_client.get("/api/photos", headers={"If-Match": etag})).status == 200
    assert (await demo_client.get("/api/photos", headers={"If-Match": "*"})).status == 200
    stale = await demo_client.get("/api/photos", headers={"If-Match": '"older"'})
    assert stale.status == 412
    assert (await stale.json())["error"] == "precondition_failed"
    weak = await demo_client.get("/api/photos", headers={"If-Match": f"W/{etag}"})
    assert weak.status == 412  # If-Match compares strongly


async def test_a_permalink_keeps_its_bytes_after_the_list_moves_on(stub: Stub, client_for,
                                                                    clock: Clock):
    client = await client_for(stub.settings(info_ttl=60))
    first = (await (await client.get("/api/photos")).json())["photos"][0]
    before = await (await client.get(first["permalink"] + "?height=120")).read()
    stub.feed_images = stub.images_not_in_feed()[:1]  # a new sol: a different photo list
    clock.now += 61
    await client.get("/api/photos")  # stale; the refresh brings the new list
    await until(lambda: not pipeline_of(client).background)
    listed = await (await client.get("/api/photos")).json()
    assert first["permalink"] not in {p["permalink"] for p in listed["photos"]}

    after = await client.get(first["permalink"] + "?height=120")
    assert (after.status, await after.read()) == (200, before)


async def test_an_unknown_photo_is_a_json_404(demo_client):
    for path in ("/photos/nope/wallpaper", "/photos/..%2F/wallpaper", "/photos/%00/wallpaper"):
        response = await demo_client.get(path)
        assert response.status == 404, path
        assert (await response.json())["error"] == "not_found"


async def test_presets_and_the_contract_carry_validators_and_freshness(demo_client):
    for path in ("/presets", "/openapi.json"):
        first = await demo_client.get(path)
        assert first.headers["Cache-Control"] == "public, max-age=3600"
        again = await demo_client.get(path, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status == 304


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
    assert sum("feed answers again" in r.getMessage() for r in caplog.records) == 1


async def test_browsers_get_an_error_page_api_clients_json(stub: Stub, client_for):
    stub.fail("feed", 503)
    client = await client_for(stub.settings(retries=0))
    page = await client.get("/", headers=HTML)
    text = await page.text()
    assert (page.status, page.content_type) == (502, "text/html")
    assert "photo feed cannot be read" in text
    assert "No earlier photos are cached yet" in text
    assert "--source demo" in text
    assert "Traceback" not in text
    api = await client.get("/api/photos", headers={"Accept": "application/json"})
    assert (api.status, (await api.json())["error"]) == (502, "bad_upstream")


async def test_the_offline_hint_is_only_for_the_default_source(aiohttp_client: AiohttpClient):
    client = await aiohttp_client(create_app(Settings(source="demo")))
    page = await client.get("/api/photos?sol=4001", headers=HTML)
    text = await page.text()
    assert page.status == 404
    assert "sol 4001 is beyond the newest sol" in text.lower()
    assert "--source demo" not in text
    assert "go to the gallery" in text  # the newest photos are still there


async def test_an_unreachable_redis_shows_as_degraded_from_the_start(aiohttp_client):
    app: web.Application = create_app(Settings(source="demo",
                                               cache=f"redis://127.0.0.1:{free_port()}/0"))
    client = await aiohttp_client(app)
    health = await (await client.get("/healthz")).json()
    assert (health["status"], health["upstream"]) == ("degraded", "ok")
