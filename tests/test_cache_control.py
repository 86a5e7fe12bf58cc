"""What the service tells caches in Cache-Control: a list's max-age counts down
with what is left of its info_ttl, a wallpaper's with the shorter of that and image_ttl; a
stale list offers only what is left of the stale window, counted from now (no Age), so an RFC
9111 cache serves it as long as the service does; documents
are fresh for an hour, the icon for a week; health and metrics are never stored, and no answer
says `public`. A stopped clock (`clock`) makes every value exact."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import pytest
from aiohttp import ClientResponse

from marsserver import Settings, create_app
from marsserver.errors import BadUpstream

from .helpers import DEMO_PERMALINK, Clock, Gated


async def test_a_repeated_list_request_counts_max_age_down(demo_client, clock: Clock):
    first = await demo_client.get("/api/photos")
    clock.now += 1.5
    second = await demo_client.get("/api/photos")
    assert [r.headers["Cache-Control"].split(",")[0] for r in (first, second)] == [
        "max-age=300", "max-age=299"]


@pytest.mark.parametrize("path", ["/", "/api/photos"])
async def test_list_max_age_counts_down_and_stale_allowances_stay(aiohttp_client, clock: Clock,
                                                                  path):
    client = await aiohttp_client(create_app(Settings(source="demo", info_ttl=60,
                                                      max_stale=300)))
    ages = []
    for elapsed in (0, 20, 59):
        clock.now = 1_700_000_000.0 + elapsed
        ages.append((await client.get(path)).headers["Cache-Control"])
    assert ages == [f"max-age={n}, stale-while-revalidate=300, stale-if-error=300"
                    for n in (60, 40, 1)]


# photo_number names a position in the list: a wallpaper is cacheable for the shorter of what
# is left of the list's info_ttl and of its own image_ttl, and counts down with both.
@pytest.mark.parametrize(("image_ttl", "info_ttl", "at_start", "after_20_s"), [
    (600, 60, 60, 40),  # the list expires first
    (30, 300, 30, 10),  # the image expires first
])
async def test_wallpaper_max_age_is_what_is_left_and_counts_down(
        aiohttp_client, clock: Clock, image_ttl, info_ttl, at_start, after_20_s):
    client = await aiohttp_client(create_app(Settings(source="demo", image_ttl=image_ttl,
                                                      info_ttl=info_ttl)))
    made = await client.get("/wallpaper?height=200")
    clock.now += 20
    later = await client.get("/wallpaper?height=200")

    assert made.headers["Cache-Control"] == f"max-age={at_start}"
    # A position in a list has no date of its own: a cache could answer for another photo.
    assert "Last-Modified" not in made.headers
    assert (later.headers["X-Cache"], later.headers["Cache-Control"]) == (
        "HIT", f"max-age={after_20_s}")


async def test_a_wallpaper_of_a_list_with_under_a_second_left_has_max_age_0(
        demo_client, clock: Clock):
    fetched = clock.now
    await demo_client.get("/api/photos")
    clock.now = fetched + 299.5
    response = await demo_client.get("/wallpaper?height=100")
    assert response.headers["Cache-Control"] == "max-age=0"


async def test_no_stale_window_is_offered_when_the_operator_allows_none(client_for):
    client = await client_for(Settings(source="demo", max_stale=0))
    response = await client.get("/api/photos")
    assert response.status == 200
    assert response.headers["Cache-Control"].endswith(
        "stale-while-revalidate=0, stale-if-error=0")


def rfc9111_serves_stale_until(response: ClientResponse, received: float) -> float:
    """Until when a cache that follows RFC 9111 (section 4.2.3's age calculation) may serve
    `response`, received at `received`, under its stale-if-error (RFC 5861): while it is stale
    by no more than that many seconds."""
    directives = dict(part.strip().partition("=")[::2]
                      for part in response.headers["Cache-Control"].split(","))
    apparent_age = max(0.0, received - parsedate_to_datetime(response.headers["Date"]).timestamp())
    initial_age = max(apparent_age, float(response.headers.get("Age", 0)))
    return (received + int(directives["max-age"]) + int(directives["stale-if-error"])
            - initial_age)


@pytest.mark.parametrize("age", [310, 400, 450, 600, 850, 899])
async def test_a_cache_following_rfc_9111_serves_a_stale_list_as_long_as_the_service(
        app_for, clock: Clock, age):
    """The service serves a list for info_ttl + max_stale after fetching it; a stale answer
    sent at any moment of that window must let a cache serve it until the same instant."""
    source = Gated()
    client = await app_for(source, info_ttl=300, max_stale=600, error_ttl=60)
    fetched = clock.now
    assert (await client.get("/api/photos")).status == 200
    source.fail["list"] = BadUpstream("NASA is down")
    clock.now = fetched + age
    stale = await client.get("/api/photos")
    assert stale.headers["X-Cache"] == "STALE"
    service_until = fetched + 300 + 600
    assert abs(rfc9111_serves_stale_until(stale, clock.now) - service_until) <= 1


async def test_stale_answers_advertise_only_what_is_left_of_the_stale_window(app_for, clock):
    """info_ttl 300 + max_stale 600; at age 850 only 50 s of staleness are left."""
    source = Gated()
    client = await app_for(source, info_ttl=300, max_stale=600, error_ttl=60)
    fresh = await client.get("/api/photos")
    assert fresh.headers["Cache-Control"] == (
        "max-age=300, stale-while-revalidate=600, stale-if-error=600")
    assert "Age" not in fresh.headers

    clock.now += 120
    later = await client.get("/api/photos")
    assert later.headers["Cache-Control"] == (
        "max-age=180, stale-while-revalidate=600, stale-if-error=600")

    source.fail["list"] = BadUpstream("NASA is down")
    clock.now += 730  # age 850
    stale_answer = await client.get("/api/photos")
    assert stale_answer.headers["X-Cache"] == "STALE"
    assert stale_answer.headers["Cache-Control"] == (
        "max-age=1, stale-while-revalidate=49, stale-if-error=49")
    assert "Age" not in stale_answer.headers  # the windows count from now
    assert "Warning" not in stale_answer.headers


@pytest.mark.parametrize("path", ["/presets", "/openapi.json"])
async def test_documents_are_cacheable_for_an_hour(demo_client, path):
    response = await demo_client.get(path)
    assert response.headers["Cache-Control"] == "max-age=3600"


async def test_the_icon_is_cacheable_for_a_week(demo_client):
    response = await demo_client.get("/favicon.ico")
    assert response.headers["Cache-Control"] == "max-age=604800"


@pytest.mark.parametrize("path", [
    "/", "/api/photos", "/wallpaper?height=100", DEMO_PERMALINK, "/presets", "/openapi.json",
    "/favicon.ico"])
async def test_no_answer_says_public_as_all_are_cacheable_without_it(demo_client, path):
    """`public` only matters for answers to requests with credentials, which this service
    never asks for; REDbot flags it as unnecessary."""
    response = await demo_client.get(path)
    assert response.status == 200
    assert "max-age=" in response.headers["Cache-Control"]
    assert "public" not in response.headers["Cache-Control"]


async def test_metrics_are_never_stored(demo_client):
    """A scrape wants the counts of now, never a cache's copy of earlier ones."""
    response = await demo_client.get("/metrics")
    assert (response.status, response.headers["Cache-Control"]) == (200, "no-store")


async def test_errors_carry_no_cache_control(demo_client):
    for path in ("/nope", "/api/photos?sol=x", "/wallpaper?photo_number=9999"):
        response = await demo_client.get(path)
        assert response.status >= 400
        assert "Cache-Control" not in response.headers, path
