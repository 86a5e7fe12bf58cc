"""Property-based `/wallpaper` queries, against the README's parameter table.

Valid queries (every parameter, in any order, with unknown ones mixed in) answer 200 with the
size and format asked for, or 404 past the end of the list; queries with one unambiguous
mistake answer 400 naming it; anything at all answers 200, 400 or 404 with a JSON error,
never a 500. No spelling of a query gets a cache entry of its own.

The oracle is the README, written out here, and only where it is unambiguous: spellings that
a forgiving parser may reasonably accept (case, `jpg`, `true`) are left to the last property.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from marsserver import Settings, create_app

from .helpers import README_PRESETS, cache_keys

Query = list[tuple[str, str]]
Client = TestClient[web.Request, web.Application]

PHOTOS = 5  # the demo source's list
FITS = ("scale", "cover", "contain")
FORMATS = {"jpeg": "image/jpeg", "webp": "image/webp", "avif": "image/avif", "png": "image/png"}
DEFAULT_QUALITY = {"jpeg": 85, "webp": 85, "avif": 80}
KNOWN = ("photo_number", "height", "width", "fit", "crop", "preset", "format", "quality",
         "download")
UNKNOWN = st.sampled_from(["utm_source", "x", "pad", "fbclid", "_", "size", "w"])
# Sizes stay small (a 4320 px PNG takes seconds); the ranges' ends come with a thin side.
SIDE = st.integers(16, 640)
THIN = st.sampled_from([(16, 4320), (7680, 16), (16, 16)])

PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
async def client(aiohttp_client) -> Client:
    """One demo app for all of a property's examples, its list already cached."""
    app = await aiohttp_client(create_app(Settings(source="demo", resize_threads=1)))
    assert (await app.get("/api/photos")).status == 200
    return app


def url(query: Query) -> str:
    return "/wallpaper?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query)


@st.composite
def sizes(draw: st.DrawFn) -> tuple[Query, tuple[int | None, int], Query]:
    """Size parameters, the (width or None for scale, height) they ask for, and an equivalent
    spelling of them."""
    kind = draw(st.sampled_from(["default", "height", "both", "preset", "thin"]))
    if kind == "default":
        fit = draw(st.sampled_from([[], [("fit", "scale")]]))
        return fit, (None, 1080), [("height", "1080")]
    if kind == "height":
        height = str(draw(SIDE))
        fit = draw(st.sampled_from([[], [("fit", "scale")]]))
        return [("height", height), *fit], (None, int(height)), [("height", height)]
    if kind == "preset":
        name = draw(st.sampled_from(sorted(README_PRESETS)))
        width, height = README_PRESETS[name]
        fit = draw(st.sampled_from(["cover", "contain"]))
        spelled = [("fit", fit)] if fit == "contain" or draw(st.booleans()) else []
        explicit = [("width", str(width)), ("height", str(height)), ("fit", fit)]
        return [("preset", name), *spelled], (width, height), explicit
    width, height = draw(THIN) if kind == "thin" else (draw(SIDE), draw(SIDE))
    fit = draw(st.sampled_from(["cover", "contain"]))
    spelled = [("fit", fit)] if fit == "contain" or draw(st.booleans()) else []
    pairs = [("width", str(width)), ("height", str(height))]
    return [*pairs, *spelled], (width, height), [*pairs, ("fit", fit)]


@st.composite
def valid_queries(draw: st.DrawFn) -> dict[str, Any]:
    """A query the README says is right, in any order, with unknown parameters mixed in."""
    size, expected, respelled = draw(sizes())
    number = draw(st.one_of(st.none(), st.integers(0, PHOTOS - 1), st.integers(PHOTOS, 9999)))
    image_format = draw(st.one_of(st.none(), st.sampled_from(sorted(FORMATS))))
    quality = draw(st.one_of(st.none(), st.integers(30, 95)))
    download = draw(st.one_of(st.none(), st.sampled_from(["0", "1"])))
    crop = draw(st.one_of(st.none(), st.sampled_from(["smart", "center"])))
    options = [(name, str(value)) for name, value in (
        ("photo_number", number), ("format", image_format), ("quality", quality),
        ("download", download), ("crop", crop)) if value is not None]
    unknown = draw(st.lists(st.tuples(UNKNOWN, st.text(max_size=20)), max_size=3))
    return {"query": draw(st.permutations([*size, *options, *unknown])),
            "respelled": [*respelled, *_canonical(number or 0, image_format or "jpeg", quality),
                          *([("crop", "center")] if crop == "center" else [])],
            "size": expected, "number": number or 0, "format": image_format or "jpeg",
            "download": download == "1"}


def _canonical(number: int, image_format: str, quality: int | None) -> Query:
    """The same output spelled out differently: defaults written out or left out (smart crop
    too), the format named instead of negotiated (`*/*` gets JPEG), no quality for PNG (it
    ignores it), no `download` (a header, not another image)."""
    quality = None if image_format == "png" else quality or DEFAULT_QUALITY[image_format]
    return [*([("photo_number", str(number))] if number else []), ("format", image_format),
            *([("quality", str(quality))] if quality is not None else [])]


def json_error(body: Any, status: int) -> str:
    """The README's error body: exactly `error` and `detail`, the code matching the status."""
    assert set(body) == {"error", "detail"}
    assert body["error"] == {400: "bad_parameter", 404: "not_found"}[status]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return str(body["detail"])


@PROPERTY
@given(case=valid_queries())
async def test_valid_queries_get_what_they_ask_for_and_one_cache_entry(client: Client, case):
    before = cache_keys(client)
    response = await client.get(url(case["query"]))
    made = cache_keys(client)

    if case["number"] >= PHOTOS:
        assert response.status == 404
        json_error(await response.json(), 404)
        assert made == before
        return
    assert response.status == 200, await response.text()
    assert response.content_type == FORMATS[case["format"]]
    width, height = case["size"]
    image = Image.open(io.BytesIO(await response.read()))
    assert image.format == case["format"].upper()
    assert image.height == height
    assert width is None or image.width == width
    assert ("Content-Disposition" in response.headers) == case["download"]
    assert len(made - before) <= 2  # at most its source image and itself

    again = await client.get(url([*case["respelled"], ("utm_source", "elsewhere")]))
    assert (again.status, again.headers["X-Cache"]) == (200, "HIT")
    assert again.headers["ETag"] == response.headers["ETag"]
    assert cache_keys(client) == made


NOT_INTEGERS = ["-1", "16.0", "1e3", "ten", "0x10", "١٦", "\uff19", "9" * 30, "16px"]
OUT_OF_RANGE = {"height": ["15", "4321", "0"], "width": ["15", "7681", "0"],
                "quality": ["29", "96"], "download": ["2", "10"],
                "photo_number": ["10000", "123456"]}
NOT_WORDS = {"fit": ["stretch", "zoom", "none"], "format": ["gif", "tiff", "bmp"],
             "preset": ["8k", "5k", "720"], "crop": ["sideways", "middle", "left"]}


WRONG_VALUES = [*[(name, wrong) for name, values in OUT_OF_RANGE.items()
                  for wrong in [*values, *NOT_INTEGERS]],
                *[(name, wrong) for name, values in NOT_WORDS.items() for wrong in values]]
# Each with the word the detail must name. Repeats have two different values: no parser can
# tell which one was meant.
WRONG_TOGETHER = [
    ([("preset", "1080p"), ("height", "100")], "preset"),
    ([("preset", "4k"), ("width", "100"), ("height", "100")], "preset"),
    ([("preset", "720p"), ("fit", "scale")], "fit"),
    ([("width", "800")], "width"),
    ([("width", "800"), ("fit", "cover")], "width"),
    ([("fit", "cover")], "fit"),
    ([("height", "300"), ("fit", "contain")], "fit"),
    ([("width", "300"), ("height", "300"), ("fit", "scale")], "fit"),
    ([("quality", "31"), ("height", "300"), ("quality", "32")], "quality"),
    ([("photo_number", "1"), ("photo_number", "2")], "photo_number"),
    ([("format", "jpeg"), ("format", "png")], "format"),
    ([("download", "0"), ("download", "1")], "download"),
    ([("crop", "smart"), ("crop", "center")], "crop"),
    ([("height", "300"), ("pad", "z" * 1100)], "query string"),  # longer than 1 KiB
]


@pytest.mark.parametrize(("name", "wrong"), WRONG_VALUES)
@settings(PROPERTY, max_examples=4)
@given(data=st.data())
async def test_a_wrong_value_is_a_400_naming_it_whatever_comes_with_it(client: Client, name,
                                                                       wrong, data):
    size, _, _ = data.draw(sizes())
    # a wrong size goes with a right other side, so no other rule is broken first
    rest = [("width", "300"), ("height", "300")] if name in ("width", "height") else size
    unknown = data.draw(st.lists(st.tuples(UNKNOWN, st.text(max_size=20)), max_size=2))
    query = data.draw(st.permutations([(name, wrong), *_without(rest, name), *unknown]))
    await refused(client, query, name)


@pytest.mark.parametrize(("query", "named"), WRONG_TOGETHER)
async def test_parameters_that_do_not_go_together_are_a_400_naming_them(client: Client, query,
                                                                        named):
    await refused(client, query, named)


def _without(query: Query, *names: str) -> Query:
    return [(k, v) for k, v in query if k not in names]


async def refused(client: Client, query: Query, named: str) -> None:
    """A 400 whose detail names the parameter at fault, and nothing cached for it."""
    before = cache_keys(client)
    response = await client.get(url(query))
    assert response.status == 400, url(query)
    assert named in json_error(await response.json(), 400)
    assert cache_keys(client) == before


VALUES = st.one_of(
    st.integers(-10**30, 10**30).map(str),
    st.integers(0, 700).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.text(max_size=30),
    st.sampled_from(["0", "1", "16", "1080", "7680", " 16", "+16", "١٦", "true", "yes", "JPG",
                     "jpg", "Cover", "WEBP", "png", "contain", "scale", "1080P", "4k", "ultrawide",
                     "", "0x10", "avif", "AVIF", "smart", "center", "Centre"]),
)
NAMES = st.one_of(st.sampled_from(KNOWN), st.sampled_from(KNOWN).map(str.upper), UNKNOWN,
                  st.text(max_size=10))


@settings(PROPERTY, max_examples=120)
@given(query=st.lists(st.tuples(NAMES, VALUES), max_size=8))
async def test_any_query_is_200_400_or_404_never_500(client: Client, query):
    before = cache_keys(client)
    response = await client.get(url(query))
    assert response.status in (200, 400, 404), url(query)
    event(f"status {response.status}")  # --hypothesis-show-statistics: how often each came
    if response.status == 200:
        assert response.content_type in FORMATS.values()
        assert len(cache_keys(client) - before) <= 2
    else:
        json_error(await response.json(), response.status)
        assert cache_keys(client) == before
