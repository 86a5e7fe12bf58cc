"""Query parsing (http/params.py): forgiving input, `Accept`, and every rule at its edge.

`format=JPG`, `preset=4K`, `fit=COVER`, `download=true` are accepted and parsed to the one
canonical `Spec` (one cache entry, whatever the spelling); anything else is still a JSON 400
that names the parameter and what it accepts.

At the edges, each test states a rule a client relies on (how `Accept` picks a format, which
values are in range, what a 400 says) where an off-by-one or a swapped operator would change
the answer: the cases mutation testing showed no other test pinned down (tests/MUTANTS.md).
"""

from __future__ import annotations

import pytest
from multidict import MultiDict

from marsserver.errors import BadParameter
from marsserver.http.params import flag_param, photo_query, wallpaper_spec
from marsserver.imaging import Spec
from marsserver.sources import Query


def spec_of(query: str) -> Spec:
    pairs = [tuple(pair.split("=")) for pair in query.split("&")]
    spec, _ = wallpaper_spec(MultiDict(pairs), accept="")
    return spec


@pytest.mark.parametrize(("spellings", "spec", "key"), [
    (["format=jpeg", "format=jpg", "format=JPEG", "format=JPG", "format=Jpeg"],
     Spec(1080, None, "scale", "jpeg", 85), "x1080-scale-q85.jpeg"),
    (["format=webp", "format=WebP"], Spec(1080, None, "scale", "webp", 85), "x1080-scale-q85.webp"),
    (["format=PNG&quality=50", "format=png"], Spec(1080, None, "scale", "png", 0),
     "x1080-scale-q0.png"),
    (["preset=4k", "preset=4K", "preset=4k&fit=COVER", "width=3840&height=2160&fit=Cover"],
     Spec(2160, 3840, "cover", "jpeg", 85), "3840x2160-cover-smart-q85.jpeg"),
    (["preset=phone", "preset=phone&crop=smart", "preset=Phone&crop=SMART",
      "width=1170&height=2532&crop=Smart", "width=1170&height=2532&fit=cover"],
     Spec(2532, 1170, "cover", "jpeg", 85, "smart"), "1170x2532-cover-smart-q85.jpeg"),
    (["preset=phone&crop=center", "preset=phone&crop=CENTRE", "width=1170&height=2532&crop=Center"],
     Spec(2532, 1170, "cover", "jpeg", 85, "center"), "1170x2532-cover-center-q85.jpeg"),
    # Only cover crops: with any other fit, crop changes nothing.
    (["height=300&crop=center", "height=300&crop=smart&fit=scale"],
     Spec(300, None, "scale", "jpeg", 85), "x300-scale-q85.jpeg"),
    (["preset=tablet&fit=contain&crop=centre", "preset=tablet&fit=contain"],
     Spec(2360, 1640, "contain", "jpeg", 85), "1640x2360-contain-q85.jpeg"),
    (["format=avif", "format=AVIF&quality=80", "format=Avif"],
     Spec(1080, None, "scale", "avif", 80), "x1080-scale-q80.avif"),
    (["format=avif&quality=85"], Spec(1080, None, "scale", "avif", 85), "x1080-scale-q85.avif"),
    (["preset=ULTRAWIDE&fit=CONTAIN&format=JPG", "width=3440&height=1440&fit=contain"],
     Spec(1440, 3440, "contain", "jpeg", 85), "3440x1440-contain-q85.jpeg"),
    (["height=300&fit=SCALE", "height=300"], Spec(300, None, "scale", "jpeg", 85),
     "x300-scale-q85.jpeg"),
])
def test_every_spelling_of_a_request_is_one_canonical_spec(spellings, spec, key):
    for query in spellings:
        assert spec_of(query) == spec, query
        assert spec_of(query).key == key, query


@pytest.mark.parametrize(("value", "meaning"), [
    ("1", True), ("true", True), ("TRUE", True), ("yes", True), ("Yes", True), ("on", True),
    ("0", False), ("false", False), ("False", False), ("no", False), ("NO", False), ("off", False),
])
def test_download_takes_the_usual_yes_and_no_words(value, meaning):
    assert flag_param(MultiDict(download=value), "download") is meaning


def test_no_download_parameter_means_no():
    assert flag_param(MultiDict(), "download") is False


@pytest.mark.parametrize(("query", "detail"), [
    ("format=gif", "format must be one of jpeg, webp, png, avif (any case; jpg for jpeg), "
                    "got 'gif'"),
    ("format=jpe", "format must be one of jpeg, webp, png, avif (any case; jpg for jpeg), "
                    "got 'jpe'"),
    ("preset=8K", "preset must be one of 720p, 1080p, 1440p, 4k, ultrawide, phone, tablet "
                  "(any case), got '8K'"),
    ("preset=4\u212a", "preset must be one of 720p, 1080p, 1440p, 4k, ultrawide, phone, tablet "
                       "(any case), got '4\u212a'"),  # the Kelvin sign, which lower() makes k
    ("fit=stretch", "fit must be one of scale, cover, contain (any case), got 'stretch'"),
    ("fit=cover&fit=COVER", "fit given 2 times; give it once, as one of scale, cover, contain "
                            "(any case)"),
    ("preset=phone&crop=sideways", "crop must be one of smart, center (any case; centre for "
                                   "center), got 'sideways'"),
    ("height=300&crop=sideways", "crop must be one of smart, center (any case; centre for "
                                 "center), got 'sideways'"),  # refused with any fit
])
def test_other_words_are_refused_naming_the_parameter_and_its_words(query, detail):
    with pytest.raises(BadParameter) as raised:
        spec_of(query)
    assert raised.value.detail == detail


@pytest.mark.parametrize("value", ["2", "maybe", "truth", "", " yes", "ye\u0455"])
def test_other_download_values_are_refused_with_the_words_it_takes(value):
    with pytest.raises(BadParameter) as raised:
        flag_param(MultiDict(download=value), "download")
    assert raised.value.detail == ("download must be one of 1, 0 (any case; true, yes, on for 1; "
                                   f"false, no, off for 0), got {value!r}")


async def test_spellings_share_one_cache_entry(demo_client):
    first = await demo_client.get("/wallpaper?height=120&format=jpeg&fit=scale")
    assert first.headers["X-Cache"] == "MISS"
    for query in ("height=120&format=JPG", "height=120&format=Jpeg&fit=SCALE"):
        response = await demo_client.get(f"/wallpaper?{query}")
        assert (response.status, response.headers["X-Cache"]) == (200, "HIT"), query
        assert response.content_type == "image/jpeg"


async def test_forgiving_spellings_work_over_http(demo_client):
    response = await demo_client.get("/wallpaper?photo_number=1&preset=1080P&fit=Contain"
                                     "&format=PNG&download=yes")
    assert response.status == 200, await response.text()
    assert response.content_type == "image/png"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="curiosity-sol4000-DEMO_NAV_LEFT-1920x1080.png"')


@pytest.mark.parametrize(("query", "detail"), [
    ("fit=CONTAIN", "fit=contain needs width and height (or a preset)"),
    ("format=tiff", "format must be one of jpeg, webp, png, avif (any case; jpg for jpeg), "
                    "got 'tiff'"),
    ("download=perhaps", "download must be one of 1, 0 (any case; true, yes, on for 1; "
                         "false, no, off for 0), got 'perhaps'"),
    ("preset=phone&crop=sideways", "crop must be one of smart, center (any case; centre for "
                                   "center), got 'sideways'"),
    ("format=avif&quality=96", "quality must be an integer from 30 to 95, got '96'"),
    ("format=avif&quality=29", "quality must be an integer from 30 to 95, got '29'"),
])
async def test_mistakes_are_still_json_400s(demo_client, query, detail):
    response = await demo_client.get(f"/wallpaper?{query}")
    assert response.status == 400
    assert await response.json() == {"error": "bad_parameter", "detail": detail}


# Accept, ranges and messages at their edges ------------------------------------------------

def format_for(accept: str) -> str:
    spec, negotiated = wallpaper_spec(MultiDict(), accept)
    assert negotiated
    return spec.format


def refusal(query: str) -> str:
    pairs = [tuple(pair.split("=", 1)) for pair in query.split("&")]
    with pytest.raises(BadParameter) as raised:
        wallpaper_spec(MultiDict(pairs), accept="")
    return raised.value.detail


@pytest.mark.parametrize(("accept", "chosen"), [
    # A browser's image Accept (Chrome, Firefox): AVIF, then WebP, then JPEG, of those named.
    ("image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", "avif"),
    ("image/webp,*/*", "webp"),
    ("*/*", "jpeg"),
    ("image/*", "jpeg"),  # only types named outright count
    ("image/jpeg, image/webp, image/avif", "avif"),  # equally acceptable: the smallest first
    ("image/avif;q=0.5, image/webp", "webp"),
    ("image/avif;q=0.5, image/jpeg", "jpeg"),
    ("image/png, image/webp", "webp"),
    ("image/png, image/jpeg", "jpeg"),
    ("image/webp;q=1, image/png", "webp"),  # no q is q=1, not more
    ("image/png;q=0.9", "png"),
    ("image/png; q = 0.5", "png"),
    ("image/png;q=1", "png"),
    ("image/webp;q=0.4, image/png;q=0.5", "png"),
    ("image/png;level=1;q=0.8, image/webp;q=0.7", "png"),
])
def test_accept_picks_the_named_format_with_the_highest_q(accept, chosen):
    assert format_for(accept) == chosen


@pytest.mark.parametrize("q", ["0", "abc", "1=1", "nan", "1.5", "-0.5", ""])
def test_a_zero_or_unreadable_q_makes_a_format_unacceptable(q):
    assert format_for(f"image/png;q={q}") == "jpeg"


def test_only_the_first_32_media_ranges_of_accept_count():
    padding = ", ".join(f"text/x-{n}" for n in range(31))
    assert format_for(f"{padding}, image/png") == "png"
    assert format_for(f"{padding}, text/x-last, image/png") == "jpeg"


def test_sol_0_is_a_sol_and_no_sol_is_the_newest():
    assert photo_query(MultiDict(sol="0")) == Query(0)
    assert photo_query(MultiDict()) == Query(None)


def test_integers_take_up_to_six_digits_leading_zeros_included():
    assert photo_query(MultiDict(sol="012345")) == Query(12345)
    with pytest.raises(BadParameter, match="sol must be an integer from 0 to 99999"):
        photo_query(MultiDict(sol="0012345"))


def test_a_repeated_camera_says_what_camera_takes():
    with pytest.raises(BadParameter) as raised:
        photo_query(MultiDict([("camera", "NAV_LEFT"), ("camera", "MAST")]))
    assert raised.value.detail == ("camera given 2 times; give it once, as comma-separated "
                                   "instrument codes")


@pytest.mark.parametrize(("query", "detail"), [
    ("height=123456789012345678901234", "height must be an integer from 16 to 4320, "
                                        "got '12345678901234567890'"),
    ("format=abcdefghijklmnopqrstuvwxyz", "format must be one of jpeg, webp, png, avif (any "
                                          "case; jpg for jpeg), got 'abcdefghijklmnopqrst'"),
    ("preset=4k&width=100", "preset cannot be combined with width or height"),
    ("preset=4k&height=100", "preset cannot be combined with width or height"),
    ("width=100", "width needs height: give both, or height alone"),
    ("width=200&height=100&fit=scale", "fit=scale takes height alone; use cover or contain "
                                       "with width"),
])
def test_each_mistake_gets_its_own_message(query, detail):
    assert refusal(query) == detail
