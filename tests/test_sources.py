"""Source adapters: parsers on real recorded NASA responses, and the offline demo source."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from marsserver import Settings
from marsserver.errors import BadUpstream, NotFound
from marsserver.sources import m2020, mars_photos, msl
from marsserver.sources.demo import CAMERAS, DemoSource

from .stub import fixture_json


def test_msl_feed_gives_the_full_frames_of_the_newest_sol_without_thumbnails():
    listing = msl.parse(fixture_json("msl-raw/msl_raw_image_items_sol5000_navleftb.json"))
    assert (listing.source, listing.rover, listing.sol) == ("msl", "curiosity", 5000)
    assert [p.id for p in listing.photos] == ["1632792", "1632788"]
    first = listing.photos[0]
    assert first.camera == "NAV_LEFT_B"
    assert first.taken == "2026-08-30T11:52:28.000Z"
    assert first.img_src.startswith("https://mars.nasa.gov/msl-raw-images/")
    assert first.img_src.endswith("NLB_841358428EDR_F1241978NCAM00353M_.JPG")
    assert first.credit == "NASA/JPL-Caltech"


def test_msl_feed_keeps_only_the_newest_sol_when_several_are_listed():
    items = [fixture_json("msl-raw/msl_raw_image_item_sol1_legacy.json"),
             *fixture_json("msl-raw/msl_raw_image_items_sol5000_navleftb.json")["items"]]
    listing = msl.parse({"items": items})
    assert listing.sol == 5000
    assert len(listing.photos) == 2


def test_msl_legacy_item_with_many_null_fields_still_parses():
    listing = msl.parse({"items": [fixture_json("msl-raw/msl_raw_image_item_sol1_legacy.json")]})
    assert listing.sol == 1
    assert listing.photos[0].img_src.startswith("https://mars.jpl.nasa.gov/")
    assert listing.photos[0].credit == "NASA/JPL-Caltech/MSSS"


def test_msl_whole_envelope_parses():
    listing = msl.parse(fixture_json("msl-raw/insight_raw_image_items_sol190_envelope.json"))
    assert (listing.sol, len(listing.photos)) == (190, 1)


@pytest.mark.parametrize("payload", [
    [], "<html>", {"items": "nope"}, {"items": []}, {"photos": []},
    {"items": [{"id": "x"}]},  # every item unusable
])
def test_msl_garbage_is_a_bad_upstream(payload):
    with pytest.raises(BadUpstream):
        msl.parse(payload)


def test_msl_one_bad_item_does_not_hide_the_good_ones():
    good = fixture_json("msl-raw/msl_raw_image_items_sol5000_navleftb.json")["items"]
    listing = msl.parse({"items": [{"id": True, "sol": "5001"}, *good]})
    assert len(listing.photos) == 2


@pytest.mark.parametrize(("fixture", "sol", "count"), [
    ("curiosity_latest_photos_sol3607_pavelis-dev.json", 3607, 51),
    ("curiosity_latest_photos_sol2758_colorfulCodeGirl.json", 2758, 14),
    ("curiosity_photos_sol1_mahli_VirtualDog_2016.json", 1, 8),
])
def test_mars_photos_fixtures_parse(fixture, sol, count):
    listing = mars_photos.parse(fixture_json(f"mars-photos/{fixture}"))
    assert (listing.source, listing.rover, listing.sol) == ("mars-photos", "curiosity", sol)
    assert len(listing.photos) == count
    assert all(p.img_src.startswith(("http://", "https://")) for p in listing.photos)


def test_mars_photos_photo_fields():
    listing = mars_photos.parse(
        fixture_json("mars-photos/curiosity_latest_photos_sol3607_pavelis-dev.json"))
    first = listing.photos[0]
    assert (first.id, first.camera, first.taken) == ("1034946", "FHAZ", "2022-09-29")


@pytest.mark.parametrize("payload", [{"latest_photos": []}, {"error": {"code": "OVER_RATE_LIMIT"}}])
def test_mars_photos_garbage_is_a_bad_upstream(payload):
    with pytest.raises(BadUpstream):
        mars_photos.parse(payload)


async def test_demo_source_is_deterministic_and_offline():
    source = DemoSource()
    listing = await source.latest()
    assert len(listing.photos) == len(CAMERAS)
    first = await source.image(listing.photos[1].img_src)
    assert first == await source.image(listing.photos[1].img_src)
    image = Image.open(io.BytesIO(first))
    assert (image.format, image.mode) == ("JPEG", "L")


async def test_demo_source_refuses_photos_it_does_not_have():
    with pytest.raises(NotFound):
        await DemoSource().image("demo:photo-99")


@pytest.mark.parametrize(("fixture", "sol", "camera"), [
    ("m2020_raw_images_sol1965_page0_num3.json", 1965, "NAVCAM_RIGHT"),
    ("m2020_raw_images_sol1993_navcamleft.json", 1993, "NAVCAM_LEFT"),
])
def test_m2020_feed_gives_full_frames_with_large_and_full_res_links(fixture, sol, camera):
    listing = m2020.parse(fixture_json(f"m2020-raw/{fixture}"))
    assert (listing.source, listing.rover, listing.sol) == ("m2020", "perseverance", sol)
    assert len(listing.photos) == 3
    photo = listing.photos[0]
    assert photo.camera == camera
    assert photo.img_src.endswith("_1200.jpg")
    assert photo.full_res is not None
    assert photo.full_res.endswith(".png")
    assert photo.credit == "NASA/JPL-Caltech"


def test_m2020_thumbnails_are_left_out():
    payload = fixture_json("m2020-raw/m2020_raw_images_sol1965_page0_num3.json")
    payload["images"][0]["sample_type"] = "Thumbnail"
    assert len(m2020.parse(payload).photos) == 2


@pytest.mark.parametrize(("values", "source", "rover"), [
    ({}, "msl", None),
    ({"rover": "perseverance"}, "m2020", "perseverance"),
    ({"rover": "perseverance", "source": "demo"}, "demo", "perseverance"),
    ({"rover": "curiosity", "source": "mars-photos"}, "mars-photos", "curiosity"),
])
def test_rover_picks_its_own_feed_unless_a_source_is_named(values, source, rover):
    settings = Settings(**values)
    assert (settings.source, settings.rover) == (source, rover)


def test_curiosity_cannot_be_served_from_perseverances_feed():
    with pytest.raises(ValueError, match="m2020 is Perseverance's feed"):
        Settings(rover="curiosity", source="m2020")


async def test_demo_source_says_which_rover():
    assert (await DemoSource("perseverance").latest()).rover == "perseverance"
