"""The HTTP API (http/app.py, http/handlers.py): shapes, defaults (with no Accept, or JSON
ranked above HTML), every error status as JSON, the query-string limit to the byte, queries
parsed once and remembered within a bound, mounting and independence."""

from __future__ import annotations

import io

import pytest
from aiohttp import web
from PIL import Image

from marsserver import Listing, Settings, create_app
from marsserver.errors import BadUpstream
from marsserver.http import handlers, params
from marsserver.sources.demo import CAMERAS

from .helpers import pipeline_of, work_entries

MSL = Settings(source="msl")
FEED = "https://mars.nasa.gov/api/v1/raw_image_items/?condition_1=msl:mission&order=sol+desc&page=0&per_page=100"


async def test_index_lists_todays_photos(demo_client):
    response = await demo_client.get("/")
    assert response.status == 200
    assert response.content_type == "application/json"
    body = await response.json()
    assert (body["source"], body["rover"], body["sol"]) == ("demo", "curiosity", 4000)
    assert len(body["photos"]) == len(CAMERAS)
    photo = body["photos"][2]
    assert set(photo) >= {"number", "id", "camera", "taken", "img_src", "wallpaper_url"}
    assert photo["number"] == 2
    wallpaper = await demo_client.get(photo["wallpaper_url"] + "&height=200")
    assert wallpaper.status == 200


async def test_wallpaper_defaults_to_photo_0_at_1080(demo_client):
    response = await demo_client.get("/wallpaper")
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    image = Image.open(io.BytesIO(await response.read()))
    assert (image.size, image.format) == ((1620, 1080), "JPEG")  # demo photo 0 is 1536x1024
    assert int(response.headers["Content-Length"]) == len(await response.read())


@pytest.mark.parametrize(("query", "name"), [
    ("height=abc", "height"), ("height=15", "height"), ("height=4321", "height"),
    ("height=1e3", "height"), ("height=-5", "height"), ("height=1080.0", "height"),
    ("height=%D9%A3", "height"), ("height=" + "9" * 50, "height"), ("height=", "height"),
    ("height=100&height=200", "height"), ("photo_number=1.5", "photo_number"),
    ("photo_number=-1", "photo_number"), ("photo_number=" + "x" * 500, "photo_number"),
])
async def test_bad_parameters_are_400_naming_the_parameter_and_range(demo_client, query, name):
    response = await demo_client.get(f"/wallpaper?{query}")
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "bad_parameter"
    assert body["detail"].startswith(name)
    assert "integer from" in body["detail"]
    assert len(body["detail"]) < 200


@pytest.mark.parametrize("length", [1025, 20_000])
async def test_very_long_query_strings_are_a_json_400(demo_client, length):
    response = await demo_client.get("/wallpaper?pad=" + "z" * length)
    assert response.status == 400
    assert (await response.json())["detail"] == "query string longer than 1024 characters"


async def test_the_query_limit_counts_decoded_characters_not_encoded_bytes(demo_client):
    """1020 characters sent as 6,000 bytes are within the limit the contract states."""
    response = await demo_client.get("/wallpaper?height=64&p=" + "%C3%A9" * 1000)
    assert response.status == 200


async def test_unknown_parameters_do_not_create_cache_entries(demo_client):
    for extra in ("a=1", "b=2", "cachebuster=3", "HEIGHT=5"):
        assert (await demo_client.get(f"/wallpaper?height=64&{extra}")).status == 200
    assert len(work_entries(demo_client)) == 3  # the list, the source, one wallpaper


async def test_a_photo_number_beyond_the_list_is_404(demo_client):
    response = await demo_client.get(f"/wallpaper?photo_number={len(CAMERAS)}")
    assert response.status == 404
    assert (await response.json())["error"] == "not_found"


async def test_unknown_routes_and_methods_answer_json(demo_client):
    missing = await demo_client.get("/nope")
    wrong = await demo_client.post("/wallpaper")
    assert (missing.status, (await missing.json())["error"]) == (404, "not_found")
    assert (wrong.status, (await wrong.json())["error"]) == (405, "method_not_allowed")
    assert wrong.headers["Allow"] == "GET,HEAD"


@pytest.mark.parametrize(("mock", "status", "error"), [
    ({"status": 500}, 502, "bad_upstream"),
    ({"body": "<html>down</html>", "content_type": "text/html"}, 502, "bad_upstream"),
    ({"payload": {"items": []}}, 502, "bad_upstream"),
    ({"exception": TimeoutError()}, 504, "upstream_timeout"),
    ({"status": 429, "headers": {"Retry-After": "30"}}, 503, "unavailable"),
])
async def test_upstream_failures_map_to_statuses(aiohttp_client, mock_nasa, mock, status, error):
    mock_nasa.get(FEED, **mock, repeat=True)
    client = await aiohttp_client(create_app(MSL))
    for path in ("/", "/wallpaper"):
        response = await client.get(path)
        assert response.status == status
        assert (await response.json())["error"] == error
    if status == 503:
        assert response.headers["Retry-After"] == "30"


async def test_an_image_link_outside_the_allowed_hosts_is_502(aiohttp_client, mock_nasa):
    mock_nasa.get(FEED, payload={"items": [{
        "id": 1, "sol": 9, "instrument": "NAV", "date_taken": "t", "image_credit": "c",
        "is_thumbnail": False, "https_url": "https://attacker.example/x.jpg"}]})
    client = await aiohttp_client(create_app(MSL))
    response = await client.get("/wallpaper")
    assert response.status == 502
    assert "outside the allowed hosts" in (await response.json())["detail"]


class BrokenSource:
    name = "broken"

    async def latest(self) -> Listing:
        raise RuntimeError("secret internal detail")

    async def image(self, link: str) -> bytes:
        raise BadUpstream("unused")


async def test_unexpected_errors_are_a_json_500_without_a_traceback(aiohttp_client, caplog):
    client = await aiohttp_client(create_app(source=BrokenSource()))
    response = await client.get("/")
    text = await response.text()
    assert response.status == 500
    assert "internal_error" in text
    assert "secret" not in text
    assert "Traceback" not in text
    assert "secret internal detail" in caplog.text  # but the operator sees it


async def test_two_apps_in_one_process_share_nothing(aiohttp_client):
    one = await aiohttp_client(create_app(Settings(source="demo")))
    two = await aiohttp_client(create_app(Settings(source="demo")))
    assert (await one.get("/wallpaper?height=100")).status == 200
    first, second = pipeline_of(one), pipeline_of(two)
    assert first is not second
    assert first.cache is not second.cache
    assert len(first.cache.view()) > 0
    assert len(second.cache.view()) == 0


async def test_mounted_under_a_prefix_its_urls_carry_the_prefix(aiohttp_client):
    parent = web.Application()
    parent.add_subapp("/mars/", create_app(Settings(source="demo")))
    client = await aiohttp_client(parent)
    body = await (await client.get("/mars/")).json()
    url = body["photos"][0]["wallpaper_url"]
    assert url.startswith("/mars/wallpaper?")
    assert (await client.get(url)).status == 200


async def test_the_favicon_is_a_small_icon_browsers_can_revalidate(demo_client):
    """Every browser visit asks for /favicon.ico: it answers, instead of logging a 404."""
    response = await demo_client.get("/favicon.ico")
    assert (response.status, response.content_type) == (200, "image/vnd.microsoft.icon")
    body = await response.read()
    icon = Image.open(io.BytesIO(body))
    assert (icon.format, icon.info["sizes"]) == ("ICO", {(16, 16), (32, 32)})
    assert len(body) < 4096
    again = await demo_client.get("/favicon.ico",
                                  headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304
    head = await demo_client.head("/favicon.ico")
    assert head.headers["Content-Length"] == str(len(body))


async def test_mounted_its_favicon_is_under_its_prefix(aiohttp_client):
    parent = web.Application()
    parent.add_subapp("/mars/", create_app(Settings(source="demo")))
    client = await aiohttp_client(parent)
    response = await client.get("/mars/favicon.ico")
    assert (response.status, response.content_type) == (200, "image/vnd.microsoft.icon")


async def test_mounted_its_json_errors_stay_inside_its_prefix(aiohttp_client):
    async def home(request: web.Request) -> web.Response:
        return web.Response(text="host")

    parent = web.Application()
    parent.router.add_get("/home", home)
    parent.add_subapp("/mars/", create_app(Settings(source="demo")))
    client = await aiohttp_client(parent)
    inside, wrong = await client.get("/mars/nope"), await client.put("/mars/presets")
    assert (inside.status, (await inside.json())["error"]) == (404, "not_found")
    assert (wrong.status, wrong.headers["Allow"]) == (405, "GET,HEAD")
    outside = await client.get("/nope")
    assert (outside.status, outside.content_type) == (404, "text/plain")  # the host's own
    assert await (await client.get("/home")).text() == "host"


async def test_remembered_queries_stay_bounded(demo_client):
    from marsserver.http.handlers import MAX_REMEMBERED_QUERIES, QUERIES

    for n in range(MAX_REMEMBERED_QUERIES + 50):
        assert (await demo_client.get(f"/wallpaper?height=64&n={n}")).status == 200
    assert (await demo_client.get("/wallpaper?height=0")).status == 400  # errors not kept
    assert 0 < len(demo_client.app[QUERIES]) <= MAX_REMEMBERED_QUERIES
    assert len(work_entries(demo_client)) == 3


@pytest.mark.parametrize(("method", "path"), [("GET", "/%0A"), ("GET", "/wallpaper%0A"),
                                              ("POST", "/%0A")])
async def test_a_path_with_a_newline_is_a_json_404_too(demo_client, method, path):
    response = await demo_client.request(method, path)
    assert (response.status, response.content_type) == (404, "application/json")


async def test_a_route_shadowed_by_the_catch_all_is_a_404_and_a_warning_not_a_bad_405(
        aiohttp_client, caplog):
    async def named(request: web.Request) -> web.Response:
        return web.Response(text=request.match_info["n"])

    app = create_app(Settings(source="demo"))
    app.router.add_get("/{n}.txt", named)
    client = await aiohttp_client(app)
    response = await client.get("/x.txt")
    assert (response.status, (await response.json())["error"]) == (404, "not_found")
    assert "/x.txt matches /{n}.txt, added after create_app" in caplog.text


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


async def test_every_answer_says_nosniff(demo_client):
    """Whatever made the answer (a handler, a ready answer, an error, the catch-all), a browser
    is told to take it for the type it says it is."""
    asks = [("GET", "/", {}), ("GET", "/", {}), ("GET", "/wallpaper?height=100", {}),
            ("GET", "/api/photos?sol=99999", {}), ("GET", "/nowhere", {"Accept": "text/html"}),
            ("POST", "/", {}), ("GET", "/healthz", {}), ("GET", "/metrics", {}),
            ("GET", "/openapi.json", {}), ("GET", "/favicon.ico", {})]
    answers = [await demo_client.request(method, path, headers=headers)
               for method, path, headers in asks]
    assert [r.status for r in answers] == [200, 200, 200, 404, 404, 405, 200, 200, 200, 200]
    assert answers[1].headers["X-Cache"] == "HIT"
    assert {r.headers.get("X-Content-Type-Options") for r in answers} == {"nosniff"}
