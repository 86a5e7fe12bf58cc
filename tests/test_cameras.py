"""Camera codes: the validator the HTTP layer calls, and human names for the gallery."""

from __future__ import annotations

import pytest

from marsserver.errors import BadParameter
from marsserver.sources.cameras import (
    CURIOSITY,
    DEMO,
    MARS_PHOTOS,
    MAX_CAMERAS,
    PERSEVERANCE,
    canonical,
    human_name,
    parse_cameras,
)
from marsserver.sources.demo import CAMERAS as DEMO_CAMERAS

from .stub import fixture_json


@pytest.mark.parametrize(("text", "codes"), [
    ("", ()),
    ("NAV_LEFT_B", ("NAV_LEFT_B",)),
    ("nav_left_b, MAST_LEFT,NAV_LEFT_B", ("MAST_LEFT", "NAV_LEFT_B")),
    ("mcz_right,  edl_pucam1", ("EDL_PUCAM1", "MCZ_RIGHT")),
])
def test_camera_lists_are_canonical(text, codes):
    assert parse_cameras(text) == codes


@pytest.mark.parametrize("text", [
    "NAV_LEFT_B|MAST_LEFT",  # the feeds' own separator
    "1:sol:in", "X", "_NAV", "NAV LEFT", "nav-left", "A" * 33,
    "NAV_\u017f",  # long s upper-cases to "S": only ASCII codes, before any case mapping
    "MCZ_LEFT,\u0661",
    " mcz_right ,, edl_pucam1 ",  # exactly what the OpenAPI pattern allows, nothing looser
    "NAV_LEFT_B,",
])
def test_camera_codes_of_the_wrong_shape_are_a_bad_parameter(text):
    with pytest.raises(BadParameter, match="camera must be up to 10 comma-separated instrument"):
        parse_cameras(text)


def test_camera_lists_are_bounded():
    codes = [f"CAM_{n}" for n in range(MAX_CAMERAS + 1)]
    assert len(canonical(codes[:-1])) == MAX_CAMERAS
    with pytest.raises(BadParameter, match="camera must be up to 10 comma-separated"):
        parse_cameras(",".join(codes))
    with pytest.raises(BadParameter, match="at most 10 cameras"):
        canonical(codes)


@pytest.mark.parametrize(("code", "name"), [
    ("NAV_LEFT_B", "Navigation Camera, left"),
    ("nav_right_a", "Navigation Camera, right"),
    ("FHAZ_LEFT_B", "Front Hazard Avoidance Camera, left"),
    ("MAST_RIGHT", "Mast Camera (Mastcam), right"),
    ("CHEMCAM_RMI", "Chemistry & Camera (ChemCam)"),
    ("FRONT_HAZCAM_RIGHT_A", "Front Hazard Avoidance Camera, right"),
    ("MCZ_LEFT", "Mastcam-Z, left"),
    ("EDL_PUCAM1", "Parachute Up-Look Camera A"),
    ("FHAZ", "Front Hazard Avoidance Camera"),
    ("DEMO_MAST", "Mast camera (demo)"),
    ("SOMETHING_NEW", "SOMETHING_NEW"),
    ("icc", "icc"),  # unknown: the code as the feed spelt it
])
def test_human_names(code, name):
    assert human_name(code) == name


def test_every_table_code_has_the_shape_the_validator_accepts():
    for table in (CURIOSITY, PERSEVERANCE, MARS_PHOTOS, DEMO):
        assert all(canonical([code]) == (code,) for code in table)
    assert len(CURIOSITY) == 17
    assert len(PERSEVERANCE) == 24
    assert set(DEMO) == set(DEMO_CAMERAS)


def test_every_instrument_in_the_recordings_has_a_name():
    recordings = ("msl-raw/msl_raw_image_items_sol86_full_and_downsampled_curieux.json",
                  "msl-raw/msl_raw_image_items_sol5000_navleftb.json")
    msl = {item["instrument"] for name in recordings for item in fixture_json(name)["items"]}
    m2020 = {item["camera"]["instrument"]
             for item in fixture_json("m2020-raw/m2020_feed_records_sols2-4_mchapman87501.json")}
    assert msl == {"NAV_LEFT_A", "NAV_RIGHT_A", "NAV_LEFT_B"}
    assert m2020 <= set(PERSEVERANCE)
    assert len(m2020) == 10
    assert msl <= set(CURIOSITY)


def test_mars_photos_names_are_the_apis_own_full_names():
    photos = fixture_json("mars-photos/curiosity_latest_photos_sol3607_pavelis-dev.json")
    names = {p["camera"]["name"]: p["camera"]["full_name"] for p in photos["latest_photos"]}
    assert len(names) == 5
    assert all(MARS_PHOTOS[code] == name for code, name in names.items())
