"""Sources at their edges: the messages an empty answer gives, how far paging goes, feed items
with odd fields, defaults of the mars-photos API, and demo photos that never change."""

from __future__ import annotations

import hashlib
import io
import logging
import re
from typing import Any

import pytest
from PIL import Image, ImageDraw

from marsserver import Settings, create_app
from marsserver.errors import BadParameter, BadUpstream, NotFound
from marsserver.sources import Query
from marsserver.sources.base import MAX_PAGES, MAX_PAGES_BACK
from marsserver.sources.demo import DemoSource, render, sol_photos
from marsserver.sources.m2020 import M2020Source
from marsserver.sources.mars_photos import MarsPhotosSource
from marsserver.sources.msl import MslSource


class Feed:
    """An upstream whose feed answers the pages given, in order, and records what was asked."""

    def __init__(self, *pages: object) -> None:
        self.pages = list(pages)
        self.asked: list[tuple[str, dict[str, str]]] = []

    async def get_json(self, url: str, params: dict[str, str]) -> object:
        self.asked.append((url, params))
        return self.pages[len(self.asked) - 1]


def msl_item(sol: int, number: int, thumbnail: bool = False) -> dict[str, Any]:
    return {"sol": sol, "id": number, "instrument": "NAV_LEFT_B", "is_thumbnail": thumbnail,
            "date_taken": "2024-01-01T00:00:00Z", "image_credit": "NASA/JPL-Caltech",
            "https_url": f"https://mars.nasa.gov/{number}.jpg", "extended": {}}


def m2020_item(**fields: Any) -> dict[str, Any]:
    item = {"imageid": "NLG_0890", "sol": 890, "sample_type": "Full",
            "credit": "NASA/JPL-Caltech/ASU", "date_taken_utc": "2023-08-22T05:04:08.947",
            "camera": {"instrument": "NAVCAM_LEFT"}, "extended": {"dimension": "(1280,960)"},
            "image_files": {"large": "https://mars.nasa.gov/a_1200.jpg",
                            "full_res": "https://mars.nasa.gov/a.png"}}
    return {**item, **fields}


def thumbnails(sol: int, page: int) -> dict[str, Any]:
    return {"items": [msl_item(sol, 100 * page + n, thumbnail=True) for n in range(100)]}


@pytest.mark.parametrize(("query", "payload", "detail"), [
    (Query(5), {"items": []},
     "the msl feed has no photos of sol 5 (a sol without photos, or one beyond the newest)"),
    (Query(5), {"items": [msl_item(5, 1, thumbnail=True), msl_item(5, 2, thumbnail=True)]},
     "the msl feed has no whole frames of sol 5 (dropped: thumbnail 2)"),
    (Query(cameras=("NAV_LEFT_B",)), {"items": [msl_item(5, 1, thumbnail=True)]},
     "none of the msl feed's newest 1 items from NAV_LEFT_B is a whole frame "
     "(dropped: thumbnail 1)"),
])
def test_an_answer_without_whole_frames_says_what_was_asked_and_dropped(query, payload, detail):
    with pytest.raises(NotFound) as raised:
        MslSource.parse(payload, query)
    assert raised.value.detail == detail


@pytest.mark.parametrize(("payload", "detail"), [
    ("maintenance", "expected a JSON object holding 'items'"),
    ({"items": {}}, "field 'items' missing or not a list"),
])
def test_an_unusable_feed_answer_names_what_is_missing(payload, detail):
    with pytest.raises(BadUpstream) as raised:
        MslSource.parse(payload)
    assert raised.value.detail == detail


def test_a_skipped_feed_item_is_logged_for_debugging_with_the_reason(caplog):
    item = msl_item(5, 1)
    del item["https_url"]
    with caplog.at_level(logging.DEBUG, logger="marsserver.sources.base"), \
            pytest.raises(NotFound):
        MslSource.parse({"items": [item]}, Query(5))
    assert [r.getMessage() for r in caplog.records] == [
        "skipping feed item: field 'https_url' missing or not a str"]


async def test_a_sol_is_searched_past_pages_of_thumbnails_up_to_max_pages(caplog):
    pages = [thumbnails(86, page) for page in range(MAX_PAGES - 1)]
    feed = Feed(*pages, {"items": [msl_item(86, 9999)]})
    listing = await MslSource(feed).photos(Query(86))
    assert [photo.id for photo in listing.photos] == ["9999"]
    assert len(feed.asked) == MAX_PAGES

    feed = Feed(*[thumbnails(86, page) for page in range(MAX_PAGES + 1)])
    with caplog.at_level(logging.WARNING, logger="marsserver.sources.base"), \
            pytest.raises(NotFound):
        await MslSource(feed).photos(Query(86))
    assert len(feed.asked) == MAX_PAGES
    assert [r.getMessage() for r in caplog.records] == [
        "msl: stopped after 10 pages for sol=86&camera=: the listing may be incomplete"]


async def test_the_newest_sol_is_looked_for_on_a_few_pages_only(caplog):
    feed = Feed(*[thumbnails(86 - page, page) for page in range(MAX_PAGES_BACK + 1)])
    with caplog.at_level(logging.WARNING, logger="marsserver.sources.base"), \
            pytest.raises(BadUpstream):
        await MslSource(feed).latest()
    assert len(feed.asked) == MAX_PAGES_BACK
    assert [r.getMessage() for r in caplog.records] == [
        "msl: stopped after 3 pages for sol=latest&camera=: no whole frame found"]


async def test_mars_photos_sends_the_demo_key_unless_given_another():
    feed = Feed({"latest_photos": []})
    with pytest.raises(BadUpstream):
        await MarsPhotosSource(feed).latest()
    assert feed.asked == [("https://api.nasa.gov/mars-photos/api/v1/rovers/curiosity/"
                           "latest_photos", {"api_key": "DEMO_KEY"})]


@pytest.mark.parametrize(("api_url", "asked"), [
    ("https://mirror.example/api//", "https://mirror.example/api/rovers/curiosity/latest_photos"),
    ("https://mirror.example/MARSX", "https://mirror.example/MARSX/rovers/curiosity/latest_photos"),
])
async def test_mars_photos_trims_only_trailing_slashes_from_the_mirror_url(api_url, asked):
    feed = Feed({"latest_photos": []})
    with pytest.raises(BadUpstream):
        await MarsPhotosSource(feed, api_url).latest()
    assert feed.asked[0][0] == asked


@pytest.mark.parametrize("max_sol", [0, 1406])
def test_mars_photos_takes_the_newest_sol_from_a_single_photo(max_sol):
    photo = {"id": 1, "sol": 0, "camera": {"name": "MAHLI"}, "earth_date": "2012-08-06",
             "img_src": "http://mars.jpl.nasa.gov/a.jpg", "rover": {"max_sol": max_sol}}
    assert MarsPhotosSource.parse({"photos": [photo]}, Query(0)).newest_sol == max_sol


def test_m2020_photos_carry_the_feeds_credit_and_need_one():
    [photo] = M2020Source.parse({"images": [m2020_item()]}).photos
    assert photo.credit == "NASA/JPL-Caltech/ASU"
    without = m2020_item()
    del without["credit"]
    with pytest.raises(BadUpstream, match=r"malformed 1"):
        M2020Source.parse({"images": [without]})


@pytest.mark.parametrize(("files", "full_res"), [
    ({"large": "https://mars.nasa.gov/a_1200.jpg", "full_res": 42}, None),
    ({"large": "https://mars.nasa.gov/a_1200.jpg"}, None),
    ({"large": "https://mars.nasa.gov/a_1200.jpg", "full_res": "https://mars.nasa.gov/a.png"},
     "https://mars.nasa.gov/a.png"),
])
def test_m2020_full_res_is_a_link_or_nothing(files, full_res):
    [photo] = M2020Source.parse({"images": [m2020_item(image_files=files)]}).photos
    assert photo.full_res == full_res


@pytest.mark.parametrize("extended", ["UNK", None, {"dimension": "UNK"}, 7])
def test_m2020_frames_of_unknown_size_are_kept(extended):
    assert len(M2020Source.parse({"images": [m2020_item(extended=extended)]}).photos) == 1


async def test_the_demo_has_photos_of_sol_0_and_says_which_photo_it_lacks():
    source = DemoSource()
    listing = await source.photos(Query(0))
    assert await source.image(listing.photos[0].img_src)
    with pytest.raises(NotFound) as raised:
        await source.image("demo:9/9")
    assert raised.value.detail == "no demo photo 'demo:9/9'"


def test_demo_photos_say_they_are_generated():
    assert {photo.credit for photo in sol_photos(4000)} == {"marsserver demo (generated)"}


async def test_a_demo_query_names_every_camera_it_found_nothing_from():
    with pytest.raises(NotFound) as raised:
        await DemoSource().photos(Query(4000, ("MAST_LEFT", "NAV_RIGHT_B")))
    assert raised.value.detail == "the demo has no photos of sol 4000 from MAST_LEFT, NAV_RIGHT_B"


@pytest.mark.parametrize(("sol", "number", "mode", "digest"), [
    (4000, 0, "RGB", "2c31097eb675817fd05b070fe3b6d4c0413921cbb5d02aaa10596e93c901c964"),
    (4000, 1, "L", "6690658d37cc11947c018b63255c52a7a2bcef947b0c7b4af9dbe863102a83e8"),
])
def test_demo_photos_are_the_same_pixels_in_every_version(sol, number, mode, digest):
    """Permalinks are served `immutable`: a demo photo drawn differently by a later version
    would leave caches holding another picture under the same URL."""
    image = Image.open(io.BytesIO(render(sol, number)))
    assert image.mode == mode
    assert hashlib.sha256(image.tobytes()).hexdigest() == digest


def test_demo_rocks_are_2_to_46_px_in_radius(monkeypatch):
    """Rocks grow toward the viewer, from 2 px up to 6 + 40 px at the bottom edge."""
    boxes: list[Any] = []
    monkeypatch.setattr(ImageDraw.ImageDraw, "ellipse", lambda _, xy, **__: boxes.append(xy))
    render(4000, 0)
    radii = [(right - left) / 2 for left, _, right, _ in boxes]
    assert len(radii) == 160
    assert 2 <= min(radii) <= max(radii) <= 46


@pytest.mark.parametrize(("settings", "feed", "asked"), [
    ({"source": "mars-photos", "api_url": "https://mirror.example/api/", "api_key": "KEY",
      "rover": "perseverance"},
     r"https://mirror\.example/api/rovers/perseverance/latest_photos\?.*",
     ("/api/rovers/perseverance/latest_photos", {"api_key": "KEY"})),
    ({"source": "m2020", "api_url": "https://mirror.example/rss/"},
     r"https://mirror\.example/rss/\?.*", ("/rss/", {
         "feed": "raw_images", "category": "mars2020", "feedtype": "json", "num": "100",
         "page": "0", "order": "sol desc"})),
])
async def test_the_configured_source_asks_the_operators_mirror(
        aiohttp_client, mock_nasa, settings, feed, asked):
    mock_nasa.get(re.compile(feed), status=404)
    client = await aiohttp_client(create_app(Settings(**settings)))
    assert (await client.get("/api/photos")).status == 502
    [(_, url)] = [key for key in mock_nasa.requests if key[1].host == "mirror.example"]
    assert (url.path, dict(url.query)) == asked


def test_a_negative_sol_is_refused_naming_it():
    with pytest.raises(BadParameter) as raised:
        Query(-1)
    assert raised.value.detail == "sol must be 0 or more, got -1"
