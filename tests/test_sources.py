"""Source adapters: frame rules on real recorded NASA answers, the queries and pages they send
(mocked NASA), and the offline demo source.

Each part ends with the adapters at their edges: the messages an empty answer gives, how far
paging goes, feed items with odd fields, defaults of the mars-photos API, demo photos that
never change (cases mutation testing showed no other test pinned down; tests/MUTANTS.md)."""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections import Counter
from typing import Any

import aiohttp
import pytest
from PIL import Image, ImageDraw

from marsserver import Settings, create_app
from marsserver.errors import BadParameter, BadUpstream, NotFound
from marsserver.sources import LATEST, REASONS, Query
from marsserver.sources.base import MAX_PAGES, MAX_PAGES_BACK, Photo
from marsserver.sources.cameras import PERSEVERANCE as PERSEVERANCE_NAMES
from marsserver.sources.demo import (
    CAMERAS,
    NEWEST_SOL,
    PERSEVERANCE,
    DemoSource,
    render,
    sol_photos,
)
from marsserver.sources.m2020 import M2020Source
from marsserver.sources.mars_photos import MarsPhotosSource
from marsserver.sources.msl import PER_PAGE, MslSource
from marsserver.upstream import Upstream

from .stub import fixture_json

MSL_FEED = re.compile(r"https://mars\.nasa\.gov/api/v1/raw_image_items/\?.*")
M2020_FEED = re.compile(r"https://mars\.nasa\.gov/rss/api/\?.*")
SOL86 = "msl-raw/msl_raw_image_items_sol86_full_and_downsampled_curieux.json"
SOL5000 = "msl-raw/msl_raw_image_items_sol5000_navleftb.json"
SOLS2_4 = "m2020-raw/m2020_feed_records_sols2-4_mchapman87501.json"
SOL890 = "m2020-raw/m2020_raw_images_sol890_29_curieux.json"


@pytest.fixture
def nasa(session: aiohttp.ClientSession) -> Upstream:
    """Mocked NASA (`mock_nasa`) as the adapters reach it: through an `Upstream` with room for
    the recorded answers (the shared `upstream` takes 1000 bytes at most)."""
    return Upstream(session, ("mars.nasa.gov",), max_bytes=10**7, retries=0)


def sent(mock_nasa: Any) -> list[dict[str, str]]:
    """The query parameters of every request made, in order (aioresponses keys them by URL)."""
    return [dict(url.query) for _, url in mock_nasa.requests]


def msl_items(sol: int, count: int, first_id: int = 0, **fields: Any) -> list[dict[str, Any]]:
    """`count` copies of a real full frame, each its own photo, cut to the fields we read
    (mocked answers over 128 KiB trip aioresponses)."""
    real = fixture_json(SOL5000)["items"][0]
    template = {key: real[key] for key in ("instrument", "date_taken", "image_credit",
                                           "https_url", "is_thumbnail")}
    extended = {"sample_type": "full", **fields.pop("extended", {})}
    return [{**template, "sol": sol, "id": first_id + n, "extended": extended, **fields}
            for n in range(count)]


def m2020_items(fixture: str) -> list[dict[str, Any]]:
    """A recording's images cut to the fields we read (see `msl_items`)."""
    return [{"imageid": item["imageid"], "sol": item["sol"], "sample_type": item["sample_type"],
             "credit": item["credit"], "date_taken_utc": item["date_taken_utc"],
             "camera": {"instrument": item["camera"]["instrument"]},
             "extended": {"dimension": item["extended"]["dimension"]},
             "image_files": {"large": item["image_files"]["large"]}}
            for item in fixture_json(fixture)["images"]]


def msl_page(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": items, "more": len(items) == PER_PAGE, "page": 0, "per_page": 100}


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


# --- whole frames, on the real recordings ---------------------------------------------

def test_curiosity_sol_86_keeps_its_8_full_frames_and_drops_its_8_downsampled():
    listing = MslSource.parse(fixture_json(SOL86))
    assert (listing.source, listing.rover, listing.sol, listing.newest_sol) == (
        "msl", "curiosity", 86, 86)
    assert [p.id for p in listing.photos] == [
        "36298", "36299", "36264", "36265", "36251", "36252", "36229", "36230"]
    assert listing.dropped == {"downsampled": 8}


def test_curiosity_sol_5000_keeps_2_full_frames_and_drops_1_thumbnail():
    listing = MslSource.parse(fixture_json(SOL5000))
    assert (listing.sol, [p.id for p in listing.photos]) == (5000, ["1632792", "1632788"])
    assert listing.dropped == {"thumbnail": 1}
    first = listing.photos[0]
    assert (first.camera, first.taken, first.credit) == (
        "NAV_LEFT_B", "2026-08-30T11:52:28.000Z", "NASA/JPL-Caltech")
    assert first.img_src.startswith("https://mars.nasa.gov/msl-raw-images/")
    assert first.img_src.endswith("NLB_841358428EDR_F1241978NCAM00353M_.JPG")


@pytest.mark.parametrize(("sample", "verdict"), [
    ("full", None), ("subframe", "subframe"), ("downsampled", "downsampled"),
    ("mixed", "mixed"), ("chemcam prc", "chemcam_prc"), ("thumbnail", "thumbnail"),
    ("something new", "other"), (7, "malformed"),
])
def test_curiosity_sample_types_other_than_full_are_dropped_by_name(sample, verdict):
    item = msl_items(9, 1, extended={"sample_type": sample})[0]
    listing = MslSource.parse({"items": [item, *msl_items(8, 1, first_id=1)]})
    assert listing.dropped == ({} if verdict is None else {verdict: 1})
    assert listing.sol == (9 if verdict is None else 8)


def test_curiosity_is_thumbnail_wins_over_a_full_sample_type():
    listing = MslSource.parse({"items": [*msl_items(9, 1, is_thumbnail=True),
                                   *msl_items(8, 1, first_id=1)]})
    assert (listing.sol, listing.dropped) == (8, {"thumbnail": 1})


def test_curiosity_items_that_give_no_sample_type_are_kept():
    listing = MslSource.parse(fixture_json("msl-raw/insight_raw_image_items_sol190_envelope.json"))
    assert (listing.sol, len(listing.photos), listing.dropped) == (190, 1, {})


def test_curiosity_legacy_item_with_many_null_fields_still_parses():
    legacy = fixture_json("msl-raw/msl_raw_image_item_sol1_legacy.json")
    listing = MslSource.parse({"items": [legacy]})
    assert listing.sol == 1
    assert listing.photos[0].img_src.startswith("https://mars.jpl.nasa.gov/")
    assert listing.photos[0].credit == "NASA/JPL-Caltech/MSSS"


def test_perseverance_1196_records_keep_1053_full_and_drop_143_thumbnails():
    records = fixture_json(SOLS2_4)
    verdicts = Counter(
        "kept" if isinstance(v, Photo) else v for v in map(M2020Source._judge, records))
    assert verdicts == {"kept": 1053, "thumbnail": 143}


def test_perseverance_records_list_the_newest_sol_and_any_sol_asked_for():
    payload = {"images": fixture_json(SOLS2_4)}
    newest = M2020Source.parse(payload)
    assert (newest.sol, len(newest.photos), newest.newest_sol) == (4, 158, 4)
    assert newest.dropped == {"thumbnail": 143}
    sol2 = M2020Source.parse(payload, Query(sol=2))
    assert (sol2.sol, len(sol2.photos), sol2.newest_sol) == (2, 895, None)
    assert sol2.dropped == {"sol": 160, "thumbnail": 141}
    mastcam = M2020Source.parse(payload, Query(cameras=("mcz_left", "MCZ_RIGHT")))
    assert (mastcam.sol, len(mastcam.photos), mastcam.newest_sol) == (2, 22, None)
    assert {p.camera for p in mastcam.photos} == {"MCZ_LEFT", "MCZ_RIGHT"}
    assert mastcam.dropped == {"camera": 1031, "thumbnail": 143}


def test_perseverance_sol_890_keeps_8_frames_and_drops_21_strips():
    listing = M2020Source.parse(fixture_json(SOL890))
    assert (listing.sol, len(listing.photos), listing.dropped) == (890, 8, {"strip": 21})


def test_perseverance_sol_888_keeps_all_13_binned_frames():
    listing = M2020Source.parse(fixture_json("m2020-raw/m2020_raw_images_sol888_13_curieux.json"))
    assert (listing.sol, len(listing.photos), listing.dropped) == (888, 13, {})


def test_perseverance_sol_1993_has_only_strips():
    payload = fixture_json("m2020-raw/m2020_raw_images_sol1993_navcamleft.json")
    with pytest.raises(BadUpstream, match=r"newest 3 items is a whole frame \(dropped: strip 3\)"):
        M2020Source.parse(payload)
    with pytest.raises(NotFound, match=r"no whole frames of sol 1993 \(dropped: strip 3\)"):
        M2020Source.parse(payload, Query(sol=1993))


def test_perseverance_full_frames_offer_large_and_full_res_links():
    listing = M2020Source.parse(fixture_json("m2020-raw/m2020_raw_images_sol1965_page0_num3.json"))
    assert (listing.source, listing.rover, listing.sol, len(listing.photos)) == (
        "m2020", "perseverance", 1965, 3)
    photo = listing.photos[0]
    assert (photo.camera, photo.credit) == ("NAVCAM_RIGHT", "NASA/JPL-Caltech")
    assert photo.img_src.endswith("_1200.jpg")
    assert photo.full_res is not None
    assert photo.full_res.endswith(".png")


@pytest.mark.parametrize(("dimension", "verdict"), [
    ("(1280,960)", None), ("(1648,1200)", None), ("(960,1280)", None),
    ("(1000,334)", None), ("(1200,400)", None),  # 3:1 exactly is still a frame
    ("(1000,333)", "strip"), ("(1280,256)", "strip"), ("(256,1280)", "strip"),
    ("(999,999)", "small"), ("(192,144)", "small"), ("(80,60)", "small"),
    ("UNK", None), ("", None), (None, None),  # unknown size: kept
])
def test_perseverance_size_rules(dimension, verdict):
    item = fixture_json(SOL890)["images"][0]
    item["extended"]["dimension"] = dimension
    judged = M2020Source._judge(item)
    assert (None if isinstance(judged, Photo) else judged) == verdict


def test_perseverance_thumbnails_and_unknown_sample_types_are_dropped():
    payload = fixture_json("m2020-raw/m2020_raw_images_sol1965_page0_num3.json")
    payload["images"][0]["sample_type"] = "Thumbnail"
    payload["images"][1]["sample_type"] = "Subframe"
    listing = M2020Source.parse(payload)
    assert (len(listing.photos), listing.dropped) == (1, {"thumbnail": 1, "other": 1})


def test_every_reason_a_feed_gives_is_a_known_label():
    items = [*fixture_json(SOLS2_4), *fixture_json(SOL890)["images"]]
    m2020_reasons = {v for v in map(M2020Source._judge, items) if isinstance(v, str)}
    msl_reasons = {v for v in map(MslSource._judge, fixture_json(SOL86)["items"])
                   if isinstance(v, str)}
    assert m2020_reasons == {"thumbnail", "strip"}
    assert msl_reasons == {"downsampled"}
    assert set(REASONS) >= {"small", "other", "subframe", "mixed", "chemcam_prc", "camera",
                            "sol", "duplicate", "malformed"} | m2020_reasons | msl_reasons


@pytest.mark.parametrize("payload", [
    [], "<html>", {"items": "nope"}, {"items": []}, {"photos": []},
    {"items": [{"id": "x"}]},  # every item unusable
])
def test_msl_garbage_is_a_bad_upstream(payload):
    with pytest.raises(BadUpstream):
        MslSource.parse(payload)


def test_msl_one_bad_item_does_not_hide_the_good_ones():
    good = fixture_json(SOL5000)["items"]
    listing = MslSource.parse({"items": [{"id": True, "sol": "5001"}, *good]})
    assert (len(listing.photos), listing.dropped) == (2, {"malformed": 1, "thumbnail": 1})


@pytest.mark.parametrize(("fixture", "sol", "count", "newest"), [
    ("curiosity_latest_photos_sol3607_pavelis-dev.json", 3607, 51, 3607),
    ("curiosity_latest_photos_sol2758_colorfulCodeGirl.json", 2758, 14, 2758),
    ("curiosity_photos_sol1_mahli_VirtualDog_2016.json", 1, 8, 1406),  # rover.max_sol
])
def test_mars_photos_fixtures_parse_unfiltered(fixture, sol, count, newest):
    listing = MarsPhotosSource.parse(fixture_json(f"mars-photos/{fixture}"))
    assert (listing.source, listing.rover, listing.sol, listing.newest_sol) == (
        "mars-photos", "curiosity", sol, newest)
    assert (len(listing.photos), listing.dropped) == (count, {})
    assert all(p.img_src.startswith(("http://", "https://")) for p in listing.photos)


def test_mars_photos_photo_fields_and_camera_filter():
    payload = fixture_json("mars-photos/curiosity_latest_photos_sol3607_pavelis-dev.json")
    first = MarsPhotosSource.parse(payload).photos[0]
    assert (first.id, first.camera, first.taken) == ("1034946", "FHAZ", "2022-09-29")
    hazcams = MarsPhotosSource.parse(payload, Query(cameras=("fhaz", "rhaz")))
    assert (len(hazcams.photos), hazcams.dropped) == (4, {"camera": 47})


@pytest.mark.parametrize("payload", [{"latest_photos": []}, {"error": {"code": "OVER_RATE_LIMIT"}}])
def test_mars_photos_garbage_is_a_bad_upstream(payload):
    with pytest.raises(BadUpstream):
        MarsPhotosSource.parse(payload)


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


# --- what the adapters ask the feeds (mocked NASA) --------------------------------------

async def test_msl_latest_asks_for_the_newest_page_only_when_it_settles(nasa, mock_nasa):
    mock_nasa.get(MSL_FEED, payload=fixture_json(SOL86))
    listing = await MslSource(nasa).latest()
    assert (listing.sol, len(listing.photos)) == (86, 8)
    assert sent(mock_nasa) == [{"order": "sol desc", "per_page": "100", "page": "0",
                                "condition_1": "msl:mission"}]


async def test_msl_asks_for_a_sol_and_cameras_by_code(nasa, mock_nasa):
    mock_nasa.get(MSL_FEED, payload=fixture_json(SOL86))
    listing = await MslSource(nasa).photos(Query(86, ("nav_right_a", "NAV_LEFT_A")))
    assert (listing.sol, len(listing.photos), listing.newest_sol) == (86, 8, None)
    assert sent(mock_nasa) == [{
        "order": "sol desc", "per_page": "100", "page": "0", "condition_1": "msl:mission",
        "condition_2": "86:sol:in", "search": "NAV_LEFT_A|NAV_RIGHT_A"}]


async def test_m2020_asks_for_a_sol_as_a_range_and_cameras_by_code(nasa, mock_nasa):
    mock_nasa.get(M2020_FEED, payload=fixture_json(SOL890))
    listing = await M2020Source(nasa).photos(Query(890, ("NAVCAM_LEFT", "mcz_left")))
    assert (listing.sol, len(listing.photos), listing.dropped) == (890, 8, {"strip": 21})
    assert sent(mock_nasa) == [{
        "feed": "raw_images", "category": "mars2020", "feedtype": "json", "num": "100",
        "page": "0", "order": "sol desc", "condition_2": "890:sol:gte",
        "condition_3": "890:sol:lte", "search": "MCZ_LEFT|NAVCAM_LEFT"}]


async def test_mars_photos_asks_for_latest_or_a_sol(nasa, mock_nasa):
    mock_nasa.get(re.compile(r"https://mirror\.example/api/rovers/curiosity/photos\?.*"),
                  payload=fixture_json("mars-photos/curiosity_photos_sol1_mahli_VirtualDog_2016.json"))
    source = MarsPhotosSource(nasa, "https://mirror.example/api/", "KEY")
    listing = await source.photos(Query(sol=1, cameras=("MAHLI",)))
    assert (listing.sol, len(listing.photos), listing.newest_sol) == (1, 8, 1406)
    [(_, url)] = mock_nasa.requests
    assert (url.path, dict(url.query)) == ("/api/rovers/curiosity/photos",
                                           {"sol": "1", "api_key": "KEY"})


async def test_a_busy_sol_is_read_page_by_page_until_a_short_page(nasa, mock_nasa):
    mock_nasa.get(MSL_FEED, payload=msl_page(msl_items(86, 100)))
    mock_nasa.get(MSL_FEED, payload=msl_page(msl_items(86, 30, first_id=100)))
    listing = await MslSource(nasa).photos(Query(sol=86))
    assert (listing.sol, len(listing.photos)) == (86, 130)
    assert [params["page"] for params in sent(mock_nasa)] == ["0", "1"]


async def test_a_sol_is_read_for_at_most_max_pages(nasa, mock_nasa):
    for page in range(MAX_PAGES + 1):
        mock_nasa.get(MSL_FEED, payload=msl_page(msl_items(86, 100, first_id=100 * page)))
    listing = await MslSource(nasa).photos(Query(sol=86))
    assert len(listing.photos) == 100 * MAX_PAGES == 1000
    assert [params["page"] for params in sent(mock_nasa)] == [str(n) for n in range(10)]


async def test_items_repeated_across_pages_are_listed_once(nasa, mock_nasa):
    mock_nasa.get(MSL_FEED, payload=msl_page(msl_items(86, 100)))
    mock_nasa.get(MSL_FEED, payload=msl_page(msl_items(86, 2, first_id=99)))
    listing = await MslSource(nasa).photos(Query(sol=86))
    assert (len(listing.photos), listing.dropped) == (101, {"duplicate": 1})


async def test_latest_pages_back_to_the_newest_sol_with_a_whole_frame(nasa, mock_nasa):
    downsampled = msl_items(87, 100, first_id=10**6, extended={"sample_type": "downsampled"})
    mock_nasa.get(MSL_FEED, payload=msl_page(downsampled))
    mock_nasa.get(MSL_FEED, payload=fixture_json(SOL86))
    listing = await MslSource(nasa).latest()
    assert (listing.sol, len(listing.photos), listing.newest_sol) == (86, 8, 87)
    assert listing.dropped == {"downsampled": 108}
    assert [params["page"] for params in sent(mock_nasa)] == ["0", "1"]


async def test_latest_gives_up_after_max_pages_back_without_a_whole_frame(nasa, mock_nasa):
    for page in range(MAX_PAGES_BACK + 1):
        mock_nasa.get(MSL_FEED, payload=msl_page(msl_items(
            90 - page, 100, first_id=100 * page, is_thumbnail=True)))
    with pytest.raises(BadUpstream, match=r"newest 300 items is a whole frame"):
        await MslSource(nasa).latest()
    assert len(sent(mock_nasa)) == MAX_PAGES_BACK == 3


async def test_latest_stops_reading_once_an_older_sol_shows_up(nasa, mock_nasa):
    mock_nasa.get(MSL_FEED, payload=msl_page([*msl_items(87, 60), *msl_items(86, 40, 60)]))
    listing = await MslSource(nasa).latest()  # a second page would not be mocked
    assert (listing.sol, len(listing.photos), listing.newest_sol) == (87, 60, 87)
    assert len(sent(mock_nasa)) == 1


async def test_latest_reads_on_until_the_newest_sol_is_complete(nasa, mock_nasa):
    mock_nasa.get(M2020_FEED, payload={"images": [
        {**item, "imageid": f"{item['imageid']}-{n}"}
        for n, item in enumerate(m2020_items(SOL890) * 4)][:100]})
    mock_nasa.get(M2020_FEED, payload=fixture_json(
        "m2020-raw/m2020_raw_images_sol888_13_curieux.json"))
    listing = await M2020Source(nasa).latest()
    # page 0: 3 x (21 strips + 8 frames) + the first 13 items again, all strips
    assert (listing.sol, len(listing.photos), listing.newest_sol) == (890, 24, 890)
    assert listing.dropped == {"strip": 76}
    assert [params["page"] for params in sent(mock_nasa)] == ["0", "1"]


async def test_a_future_sol_is_not_found(nasa, mock_nasa):
    mock_nasa.get(M2020_FEED, payload=fixture_json("m2020-raw/m2020_raw_images_empty_curieux.json"))
    with pytest.raises(NotFound, match=r"no photos of sol 99999 \(.*beyond the newest\)"):
        await M2020Source(nasa).photos(Query(sol=99999))


async def test_an_empty_feed_is_a_bad_upstream_when_nothing_was_asked(nasa, mock_nasa):
    mock_nasa.get(M2020_FEED, payload=fixture_json("m2020-raw/m2020_raw_images_empty_curieux.json"))
    with pytest.raises(BadUpstream, match="m2020 feed has no photos"):
        await M2020Source(nasa).latest()


async def test_cameras_are_checked_locally_when_the_feed_ignores_the_search(nasa, mock_nasa):
    mock_nasa.get(MSL_FEED, payload=fixture_json(SOL86))
    listing = await MslSource(nasa).photos(Query(sol=86, cameras=("NAV_RIGHT_A",)))
    assert {p.camera for p in listing.photos} == {"NAV_RIGHT_A"}
    assert (len(listing.photos), listing.dropped) == (4, {"camera": 4, "downsampled": 8})


async def test_a_camera_without_photos_that_sol_is_not_found(nasa, mock_nasa):
    mock_nasa.get(MSL_FEED, payload=fixture_json(SOL86))
    with pytest.raises(NotFound, match=r"no whole frames of sol 86 from MAST_LEFT "
                                       r"\(dropped: camera 8, downsampled 8\)"):
        await MslSource(nasa).photos(Query(sol=86, cameras=("mast_left",)))
    mock_nasa.get(MSL_FEED, payload={"items": [], "more": False, "total": 0})
    with pytest.raises(NotFound, match="msl feed has no photos of sol 86 from MAST_LEFT"):
        await MslSource(nasa).photos(Query(sol=86, cameras=("MAST_LEFT",)))


def other_cameras(sol: int, page: int) -> dict[str, Any]:
    return {"items": [msl_item(sol, 100 * page + n) for n in range(100)]}  # all NAV_LEFT_B


async def test_a_camera_query_stops_at_a_page_of_other_cameras_only():
    """A feed that ignores the camera search would have us read every page of a sol for a
    camera it lacks, at any client's asking: the first page without it ends the search."""
    feed = Feed(*[other_cameras(86, page) for page in range(MAX_PAGES)])
    with pytest.raises(NotFound, match="no whole frames of sol 86 from MAST_LEFT"):
        await MslSource(feed).photos(Query(86, ("MAST_LEFT",)))
    assert len(feed.asked) == 1
    feed = Feed(*[other_cameras(90 - page, page) for page in range(MAX_PAGES_BACK)])
    with pytest.raises(NotFound, match="newest 100 items from MAST_LEFT"):
        await MslSource(feed).photos(Query(cameras=("MAST_LEFT",)))
    assert len(feed.asked) == 1


async def test_a_camera_query_reads_on_while_its_pages_hold_that_camera():
    mixed = other_cameras(86, 0)
    mixed["items"][-1] = {**msl_item(86, 99), "instrument": "MAST_LEFT"}
    thumbnail = {**msl_item(86, 100, thumbnail=True), "instrument": "MAST_LEFT"}
    feed = Feed(mixed, {"items": [thumbnail] * 100}, {"items": [
        {**msl_item(86, 200), "instrument": "MAST_LEFT"}]})
    listing = await MslSource(feed).photos(Query(86, ("MAST_LEFT",)))
    assert [photo.id for photo in listing.photos] == ["99", "200"]
    assert len(feed.asked) == 3


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


# --- queries ------------------------------------------------------------------------------

def test_queries_are_canonical_so_equal_questions_are_equal_keys():
    one = Query(12, ("nav_left_b", "MAST_LEFT", "NAV_LEFT_B"))
    assert one.cameras == ("MAST_LEFT", "NAV_LEFT_B")
    assert one == Query(12, ("MAST_LEFT", "NAV_LEFT_B"))
    assert len({one, Query(12, ("MAST_LEFT", "NAV_LEFT_B")), LATEST, Query()}) == 2
    assert (one.key, LATEST.key) == ("sol=12&camera=MAST_LEFT,NAV_LEFT_B", "sol=latest&camera=")


@pytest.mark.parametrize("bad", [{"sol": -1}, {"cameras": ("NAV|MAST",)}])
def test_queries_refuse_what_no_feed_could_answer(bad):
    with pytest.raises(BadParameter):
        Query(**bad)


def test_a_negative_sol_is_refused_naming_it():
    with pytest.raises(BadParameter) as raised:
        Query(-1)
    assert raised.value.detail == "sol must be 0 or more, got -1"


# --- the demo source ----------------------------------------------------------------------

async def test_demo_newest_sol_has_one_photo_of_each_kind():
    listing = await DemoSource().latest()
    assert (listing.source, listing.rover, listing.sol, listing.newest_sol) == (
        "demo", "curiosity", NEWEST_SOL, 4000)
    assert tuple(p.camera for p in listing.photos) == CAMERAS
    assert (listing.photos[0].img_src, listing.photos[0].taken) == (
        "demo:4000/0", "2024-01-01T12:00:00Z")


async def test_demo_any_sol_is_derived_from_its_number():
    listing = await DemoSource().photos(Query(sol=3999))
    assert [p.camera for p in listing.photos] == [
        "DEMO_NAV_RIGHT", "DEMO_MAST", "DEMO_NAV_LEFT", "DEMO_MAST"]
    # a sol (1.0275 days) before the newest sol's 2024-01-01T12:00Z, then 7 minutes apart
    assert [p.taken for p in listing.photos[:2]] == ["2023-12-31T11:20:24Z",
                                                     "2023-12-31T11:27:24Z"]
    assert listing == await DemoSource().photos(Query(sol=3999))
    assert len((await DemoSource().photos(Query(sol=0))).photos) == 4


async def test_demo_filters_cameras_and_refuses_sols_beyond_the_newest():
    source = DemoSource()
    mast = await source.photos(Query(sol=3999, cameras=("demo_mast",)))
    assert [p.id for p in mast.photos] == ["demo-3999-1", "demo-3999-3"]
    with pytest.raises(NotFound, match="no photos of sol 3998 from DEMO_NAV_LEFT"):
        await source.photos(Query(sol=3998, cameras=("DEMO_NAV_LEFT",)))
    with pytest.raises(NotFound, match="sol 4001 is beyond the newest sol, 4000"):
        await source.photos(Query(sol=4001))


async def test_demo_images_are_deterministic_and_drawn_as_their_link_says():
    source = DemoSource()
    first = await source.image("demo:3999/3")
    assert first == await DemoSource().image("demo:3999/3")
    assert first != await source.image("demo:3997/0")  # the same kind, another seed
    image = Image.open(io.BytesIO(first))
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (1600, 900))
    gray = Image.open(io.BytesIO(await source.image("demo:4000/1")))
    assert (gray.mode, gray.size) == ("L", (1024, 1024))


@pytest.mark.parametrize("link", ["demo:photo-1", "demo:3999/4", "demo:4001/0", "demo:04000/0",
                                  "demo:4000/0x", "https://mars.nasa.gov/a.jpg"])
async def test_demo_source_refuses_photos_it_does_not_have(link):
    with pytest.raises(NotFound):
        await DemoSource().image(link)


async def test_the_perseverance_demo_has_its_own_sols_and_cameras():
    """Not the Curiosity demo under another name: both rovers can be tried offline."""
    perseverance, curiosity = DemoSource("perseverance"), DemoSource("curiosity")
    newest = await perseverance.latest()
    assert (newest.rover, newest.sol, newest.newest_sol) == ("perseverance", 1000, 1000)
    assert [p.camera for p in newest.photos] == [
        "MCZ_LEFT", "NAVCAM_LEFT", "MCZ_RIGHT", "FRONT_HAZCAM_LEFT_A", "REAR_HAZCAM_RIGHT"]
    assert {p.camera for p in newest.photos} <= set(PERSEVERANCE_NAMES)
    assert newest.photos[0].id == "demo-perseverance-1000-0"
    assert newest.photos[0].taken == "2023-12-12T12:00:00Z"
    with pytest.raises(NotFound, match="sol 1001 is beyond the newest sol, 1000"):
        await perseverance.photos(Query(1001))
    mastcam = await perseverance.photos(Query(999, ("mcz_left", "mcz_right")))
    assert {p.camera for p in mastcam.photos} == {"MCZ_LEFT", "MCZ_RIGHT"}
    with pytest.raises(NotFound):
        await perseverance.image("demo:4000/0")  # Curiosity's newest sol is not one of its
    image = Image.open(io.BytesIO(await perseverance.image("demo:1000/0")))
    assert (image.mode, image.size) == ("RGB", (1648, 1200))
    assert await perseverance.image("demo:900/1") != await curiosity.image("demo:900/1")
    assert (await curiosity.latest()).sol == 4000  # Curiosity's demo is as it was


PERSEVERANCE_DIGEST = "09bafe4d7ed684fe7ebe947f664367cc0b73ec4b1e39eacfc20243f8ce82309a"


def test_perseverance_demo_photos_are_the_same_pixels_in_every_version():
    image = Image.open(io.BytesIO(render(1000, 3, PERSEVERANCE)))
    assert (image.mode, image.size) == ("RGB", (1280, 960))
    assert hashlib.sha256(image.tobytes()).hexdigest() == PERSEVERANCE_DIGEST


async def test_the_perseverance_demo_serves_its_gallery_wallpapers_and_permalinks(
        aiohttp_client):
    client = await aiohttp_client(create_app(Settings(source="demo", rover="perseverance")))
    listing = await (await client.get("/api/photos")).json()
    assert (listing["rover"], listing["sol"], listing["photos"][0]["camera_name"]) == (
        "perseverance", 1000, "Mastcam-Z, left")
    page = await (await client.get("/", headers={"Accept": "text/html"})).text()
    assert "Perseverance: sol 1000" in page
    assert "Navigation Camera, left" in page
    for url in ("/wallpaper?photo_number=1&height=100",
                listing["photos"][4]["permalink"] + "&height=100",
                "/api/photos?sol=3&camera=NAVCAM_LEFT"):
        assert (await client.get(url)).status == 200, url


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

