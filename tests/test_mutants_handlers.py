"""HTTP handling at its edges: requests without an `Accept` header, `Accept` that ranks JSON
above HTML, the exact query-string limit, a long unknown photo id, health while NASA fails,
and the stale window when the operator allows none."""

from __future__ import annotations

import math
from email.utils import formatdate

import pytest

from marsserver import Settings, create_app
from marsserver.errors import BadUpstream, Unavailable
from marsserver.http import handlers, params
from marsserver.http.handlers import PIPELINE
from marsserver.sources import Listing, Query, QuerySource

from .helpers import Clock

PERMALINK = "/photos/demo-4000-0/wallpaper?height=100"
HTML = {"Accept": "text/html"}


class Down(QuerySource):
    """NASA during an outage (or, with `error`, whatever else fails)."""

    name = "down"

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error or BadUpstream("mars.nasa.gov answered HTTP 503")

    async def photos(self, query: Query) -> Listing:
        raise self.error

    async def image(self, link: str) -> bytes:
        raise self.error


async def test_a_client_that_sends_no_accept_header_gets_json_and_jpeg(demo_client):
    listing = await demo_client.get("/", skip_auto_headers=["Accept"])
    assert (listing.status, listing.content_type) == (200, "application/json")
    image = await demo_client.get("/wallpaper?height=100", skip_auto_headers=["Accept"])
    assert (image.status, image.content_type) == (200, "image/jpeg")


async def test_json_ranked_above_html_gets_json(demo_client):
    response = await demo_client.get(
        "/", headers={"Accept": "text/html;q=0.5, application/json"})
    assert (response.status, response.content_type) == (200, "application/json")


@pytest.mark.parametrize("path", ["/api/photos", "/wallpaper"])
async def test_a_query_string_of_exactly_1024_bytes_is_read_and_one_more_is_not(
        demo_client, path):
    padding = "x=" + "a" * (1024 - len("height=100&x="))
    accepted = await demo_client.get(f"{path}?height=100&{padding}")
    assert accepted.status == 200, await accepted.text()
    refused = await demo_client.get(f"{path}?height=100&{padding}a")
    assert refused.status == 400
    assert await refused.json() == {"error": "bad_parameter",
                                    "detail": "query string longer than 1024 characters"}


async def test_an_unknown_photo_id_is_quoted_back_cut_to_80_characters(demo_client):
    response = await demo_client.get("/photos/" + "%25" + "x" * 200 + "/wallpaper")
    assert response.status == 404
    assert await response.json() == {"error": "not_found",
                                     "detail": "no photo " + repr("%" + "x" * 79)}


async def test_health_says_degraded_while_the_upstream_fails(app_for):
    client = await app_for(Down())
    assert (await client.get("/api/photos")).status == 502
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "degraded", "upstream": "failing",
                                     "source": "down", "in_flight": 0}


async def test_no_stale_window_is_offered_when_the_operator_allows_none(client_for):
    client = await client_for(Settings(source="demo", max_stale=0))
    response = await client.get("/api/photos")
    assert response.status == 200
    assert response.headers["Cache-Control"].endswith(
        "stale-while-revalidate=0, stale-if-error=0")


async def test_a_stale_list_says_how_old_it_is_and_when_nasa_gave_it(stub, client_for,
                                                                     clock: Clock):
    client = await client_for(stub.settings(info_ttl=60, retries=0, error_ttl=600))
    fetched = clock.now
    assert (await client.get("/api/photos")).status == 200
    stub.fail("feed", 500)
    clock.now += 61
    response = await client.get("/api/photos")
    assert response.headers["X-Cache"] == "STALE"
    assert (response.headers["Age"], response.headers["Date"]) == (
        "61", formatdate(fetched, usegmt=True))


async def test_a_repeated_list_request_counts_max_age_down(demo_client, clock: Clock):
    first = await demo_client.get("/api/photos")
    clock.now += 1.5
    second = await demo_client.get("/api/photos")
    assert [r.headers["Cache-Control"].split(",")[1] for r in (first, second)] == [
        " max-age=300", " max-age=299"]


async def test_a_permalink_is_immutable_and_varies_only_with_a_negotiated_format(demo_client):
    negotiated = await demo_client.get(PERMALINK)
    assert negotiated.status == 200
    assert negotiated.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert negotiated.headers["Vary"] == "Accept"
    assert "Content-Disposition" not in negotiated.headers
    chosen = await demo_client.get(PERMALINK + "&format=jpeg")
    assert "Vary" not in chosen.headers
    download = await demo_client.get(PERMALINK + "&download=1")
    assert download.headers["Content-Disposition"].startswith('attachment; filename="')


@pytest.mark.parametrize("path", ["/presets", "/openapi.json"])
async def test_documents_are_cacheable_for_an_hour(demo_client, path):
    response = await demo_client.get(path)
    assert response.headers["Cache-Control"] == "public, max-age=3600"


async def test_if_none_match_lists_may_omit_the_spaces(demo_client):
    etag = (await demo_client.get(PERMALINK)).headers["ETag"]
    response = await demo_client.get(PERMALINK, headers={"If-None-Match": f'"other",{etag}'})
    assert response.status == 304


@pytest.mark.parametrize(("error", "status", "advice"), [
    (Unavailable("mars.nasa.gov asked us to slow down", retry_after=30), 503,
     "Try again in 30 seconds."),
    (BadUpstream("mars.nasa.gov answered HTTP 503"), 502, "No earlier photos are cached yet"),
])
async def test_a_browser_gets_an_html_error_page_with_advice(app_for, error, status, advice):
    client = await app_for(Down(error))
    response = await client.get("/", headers=HTML)
    assert response.status == status
    assert (response.content_type, response.charset) == ("text/html", "utf-8")
    assert advice in await response.text()
    assert "--source demo" not in await response.text()


async def test_an_error_page_points_at_the_gallery_while_the_newest_photos_are_cached(
        demo_client):
    assert (await demo_client.get("/api/photos")).status == 200
    response = await demo_client.get("/wallpaper?photo_number=999", headers=HTML)
    assert response.status == 404
    assert "go to the gallery" in await response.text()


@pytest.mark.parametrize(("error", "status"), [
    (BadUpstream("mars.nasa.gov answered HTTP 503"), 502),
    (RuntimeError("a bug"), 500),
])
async def test_nasa_failing_suggests_the_demo_source_to_those_running_msl(
        aiohttp_client, error, status):
    client = await aiohttp_client(create_app(Settings(source="msl"), source=Down(error)))
    response = await client.get("/", headers=HTML)
    assert response.status == status
    assert "<code>marsserver --source demo</code>" in await response.text()


@pytest.mark.parametrize("first_after", [0.7, 0.1])
async def test_a_ready_list_answer_is_not_reused_once_its_headers_would_change(
        client_for, clock: Clock, first_after):
    """Max-age and the stale window tick at different instants when the operator's
    `max_stale` is fractional; whichever ticks first, the next answer must say so."""
    client = await client_for(Settings(source="demo", max_stale=11.3))
    fetched = clock.now
    await client.get("/api/photos")
    clock.now = fetched + first_after
    await client.get("/api/photos")
    clock.now += 0.5
    response = await client.get("/api/photos")
    fresh = 300 - (clock.now - fetched)
    max_age = math.ceil(fresh)
    assert response.headers["Cache-Control"] == (
        f"public, max-age={max_age}, stale-while-revalidate={int(fresh + 11.3) - max_age}, "
        f"stale-if-error={int(fresh + 11.3) - max_age}")


async def test_a_wallpaper_of_a_list_with_under_a_second_left_has_max_age_0(
        demo_client, clock: Clock):
    fetched = clock.now
    await demo_client.get("/api/photos")
    clock.now = fetched + 299.5
    response = await demo_client.get("/wallpaper?height=100")
    assert response.headers["Cache-Control"] == "public, max-age=0"


async def test_a_ready_wallpaper_answer_is_not_reused_once_its_max_age_would_change(
        demo_client, clock: Clock):
    fetched = clock.now
    await demo_client.get("/api/photos")
    for after in (0.7, 0.9, 1.2):  # made; asked again (299.1 s of the list left); ticked
        clock.now = fetched + after
        response = await demo_client.get("/wallpaper?height=100")
    assert response.headers["Cache-Control"] == "public, max-age=298"


async def test_if_match_naming_another_version_is_a_412_naming_the_current_one(demo_client):
    etag = (await demo_client.get(PERMALINK)).headers["ETag"]
    response = await demo_client.get(PERMALINK, headers={"If-Match": '"another"'})
    assert response.status == 412
    assert response.headers["ETag"] == etag
    assert await response.json() == {
        "error": "precondition_failed",
        "detail": f"If-Match or If-Unmodified-Since names another version than {etag}"}


async def test_a_permalink_not_modified_since_its_date_is_a_304(demo_client):
    modified = (await demo_client.get(PERMALINK)).headers["Last-Modified"]
    response = await demo_client.get(PERMALINK, headers={"If-Modified-Since": modified})
    assert response.status == 304


async def test_if_match_compares_strongly_so_a_weak_tag_never_matches(demo_client):
    etag = (await demo_client.get(PERMALINK)).headers["ETag"]
    response = await demo_client.get(PERMALINK, headers={"If-Match": f"W/{etag}"})
    assert response.status == 412


async def test_an_error_for_a_client_without_accept_is_json_and_says_nothing_of_retrying(
        demo_client):
    response = await demo_client.get("/wallpaper?height=0", skip_auto_headers=["Accept"])
    assert response.status == 400
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "Retry-After" not in response.headers


async def test_an_error_for_a_client_ranking_json_above_html_is_json(demo_client):
    response = await demo_client.get(
        "/wallpaper?height=0", headers={"Accept": "text/html;q=0.5, application/json"})
    assert (response.status, response.content_type) == (400, "application/json")


async def test_an_error_page_keeps_retry_after(app_for):
    client = await app_for(Down(Unavailable("mars.nasa.gov asked us to slow down",
                                            retry_after=30)))
    response = await client.get("/", headers=HTML)
    assert (response.status, response.content_type) == (503, "text/html")
    assert response.headers["Retry-After"] == "30"


@pytest.mark.parametrize("path", ["/api/photos", "/wallpaper?height=100"])
async def test_a_repeated_request_is_answered_ready_without_the_pipeline(
        demo_client, clock: Clock, monkeypatch, path):
    """The README's response cache: the same answer again, without asking the pipeline."""
    pipeline = demo_client.app[PIPELINE]
    fetched = clock.now
    await demo_client.get(path)
    clock.now = fetched + 0.5  # max-age ticks at whole seconds of the list's age
    kept = await demo_client.get(path)
    asked: list[Query] = []
    real = pipeline.listing
    monkeypatch.setattr(pipeline, "listing", lambda query: asked.append(query) or real(query))
    again = await demo_client.get(path)
    assert asked == []
    assert (again.headers["X-Cache"], await again.read()) == ("HIT", await kept.read())


async def test_a_wallpaper_query_is_parsed_once_however_often_it_is_asked(
        demo_client, monkeypatch):
    parsed: list[object] = []
    real = params.wallpaper_spec
    monkeypatch.setattr(params, "wallpaper_spec",
                        lambda *args: parsed.append(args) or real(*args))
    for _ in range(3):  # conditional requests: past the ready answers, to the parsing
        response = await demo_client.get("/wallpaper?height=100",
                                         headers={"If-None-Match": '"another"'})
        assert response.status == 200
    assert len(parsed) == 1


async def test_remembered_queries_never_exceed_their_bound(demo_client, monkeypatch):
    monkeypatch.setattr(handlers, "MAX_REMEMBERED_QUERIES", 4)
    for n in range(5):
        assert (await demo_client.get(f"/wallpaper?height=64&n={n}")).status == 200
    assert len(demo_client.app[handlers.QUERIES]) <= 4
