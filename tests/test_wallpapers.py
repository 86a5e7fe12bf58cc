"""Wallpapers people want: screen fits, presets, formats, negotiation, downloads, ETags."""

from __future__ import annotations

import io
import re
import threading

import pytest
from PIL import Image

from marsserver import Settings, create_app, imaging
from marsserver.core.pipeline import Rendition
from marsserver.imaging import Spec

from .helpers import README_PRESETS, cache_keys, pipeline_of
from .stub import fixture_json

PHOTO_0 = (1536, 1024)  # demo photo 0 (colour); photo 1 is 1024x1024 grayscale


def opened(body: bytes) -> Image.Image:
    return Image.open(io.BytesIO(body))


async def image_of(client, query: str, **headers: str) -> tuple[Image.Image, object]:
    response = await client.get(f"/wallpaper?{query}", headers=headers)
    assert response.status == 200, await response.text()
    return opened(await response.read()), response


@pytest.mark.parametrize(("query", "size"), [
    ("height=300", (450, 300)),
    ("width=800&height=300", (800, 300)),
    ("width=300&height=800", (300, 800)),
    ("width=800&height=300&fit=cover", (800, 300)),
    ("width=800&height=300&fit=contain", (800, 300)),
    ("width=16&height=4320&fit=contain", (16, 4320)),
])
async def test_every_fit_gives_exactly_the_size_asked_for(demo_client, query, size):
    image, _ = await image_of(demo_client, query)
    assert image.size == size


async def test_contain_letterboxes_in_black_and_cover_fills_the_frame(demo_client):
    contained, _ = await image_of(demo_client, "width=800&height=300&fit=contain")
    covered, _ = await image_of(demo_client, "width=800&height=300&fit=cover")
    assert max(contained.convert("L").getpixel((5, 150)), contained.getpixel((795, 150))[0]) < 8
    assert covered.convert("L").getpixel((5, 150)) > 20


@pytest.mark.parametrize(("preset", "size"), README_PRESETS.items())
async def test_presets_are_the_readmes_screen_sizes(demo_client, preset, size):
    image, _ = await image_of(demo_client, f"preset={preset}&photo_number=2")
    assert image.size == size


async def test_a_preset_and_its_explicit_size_share_one_cache_entry(demo_client):
    await demo_client.get("/wallpaper?preset=1080p")
    response = await demo_client.get("/wallpaper?width=1920&height=1080&fit=cover")
    assert response.headers["X-Cache"] == "HIT"
    wallpapers = [k for k in cache_keys(demo_client) if k.startswith("wallpaper:")]
    assert len(wallpapers) == 1


@pytest.mark.parametrize(("query", "detail"), [
    ("preset=1080p&height=100", "preset cannot be combined"),
    ("preset=8k", "preset must be one of"),
    ("width=800", "width needs height"),
    ("height=300&fit=cover", "fit=cover needs width"),
    ("width=800&height=300&fit=scale", "fit=scale takes height alone"),
    ("width=800&height=300&fit=stretch", "fit must be one of"),
    ("width=7681&height=300", "width must be an integer from 16 to 7680"),
    ("format=gif", "format must be one of jpeg, webp, png, avif"),
    ("preset=phone&crop=sideways", "crop must be one of smart, center"),
    ("format=avif&quality=96", "quality must be an integer from 30 to 95"),
    ("quality=29", "quality must be an integer from 30 to 95"),
    ("quality=96", "quality must be an integer from 30 to 95"),
    ("download=2", "download must be"),
])
async def test_bad_combinations_are_400_saying_why(demo_client, query, detail):
    response = await demo_client.get(f"/wallpaper?{query}")
    assert response.status == 400
    assert detail in (await response.json())["detail"]


@pytest.mark.parametrize(("name", "media_type"), [("jpeg", "image/jpeg"), ("webp", "image/webp"),
                                                  ("avif", "image/avif"), ("png", "image/png")])
async def test_formats_on_request_without_vary(demo_client, name, media_type):
    image, response = await image_of(demo_client, f"height=120&format={name}")
    assert response.content_type == media_type
    assert image.format == name.upper()
    assert "Vary" not in response.headers


@pytest.mark.parametrize(("accept", "expected"), [
    ("image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", "image/avif"),
    ("image/webp,*/*", "image/webp"),
    ("image/webp,image/*,*/*;q=0.8", "image/webp"),
    ("image/avif,image/webp;q=0.9,image/jpeg", "image/avif"),
    ("image/avif;q=0.8,image/webp;q=0.9,image/jpeg", "image/jpeg"),
    ("image/png", "image/png"),
    ("*/*", "image/jpeg"),
    ("", "image/jpeg"),
    ("image/webp;q=0, image/jpeg;q=0.5", "image/jpeg"),
    ("text/html;q=nan, image/webp;q=2", "image/jpeg"),
    ("image/webp;Q=0, image/png", "image/png"),
])
async def test_format_is_negotiated_from_accept_with_vary(demo_client, accept, expected):
    _, response = await image_of(demo_client, "height=120", Accept=accept)
    assert response.content_type == expected
    assert response.headers["Vary"] == "Accept"


async def test_quality_changes_the_bytes_and_is_part_of_the_key(demo_client):
    low = await (await demo_client.get("/wallpaper?height=400&quality=30")).read()
    high = await (await demo_client.get("/wallpaper?height=400&quality=95")).read()
    assert len(low) < len(high) / 2


async def test_grayscale_stays_grayscale_in_jpeg_png_and_avif(demo_client):
    for name in ("jpeg", "png", "avif"):
        image, _ = await image_of(demo_client, f"photo_number=1&height=100&format={name}")
        assert image.mode == "L"
    webp, _ = await image_of(demo_client, "photo_number=1&height=100&format=webp")
    assert webp.mode == "RGB"


async def test_download_names_the_file_meaningfully(demo_client):
    response = await demo_client.get("/wallpaper?photo_number=1&preset=1080p&download=1")
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="curiosity-sol4000-DEMO_NAV_LEFT-1920x1080.jpg"')
    plain = await demo_client.get("/wallpaper?photo_number=1&preset=1080p")
    assert "Content-Disposition" not in plain.headers


async def test_an_avif_download_is_named_avif(demo_client):
    response = await demo_client.get("/wallpaper?photo_number=1&preset=1080p&download=1",
                                     headers={"Accept": "image/avif,image/webp,*/*"})
    assert response.content_type == "image/avif"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="curiosity-sol4000-DEMO_NAV_LEFT-1920x1080.avif"')
    photo = (await (await demo_client.get("/api/photos")).json())["photos"][0]
    permalink = await demo_client.get(photo["permalink"] + "&preset=phone&format=avif&download=1")
    assert permalink.headers["Content-Disposition"].endswith('-1170x2532.avif"')


async def test_avif_is_encoded_in_a_resize_thread_counted_against_the_queue(demo_client,
                                                                           monkeypatch):
    """The encoder, AVIF's included, runs inside the resize: off the event loop, while the
    resize counts against --resize-queue."""
    pipeline = pipeline_of(demo_client)
    seen = []
    real = imaging._encode

    def encode(image: Image.Image, spec: Spec) -> bytes:
        seen.append((spec.format, threading.current_thread() is threading.main_thread(),
                     pipeline.resizes_pending))
        return real(image, spec)

    monkeypatch.setattr(imaging, "_encode", encode)
    response = await demo_client.get("/wallpaper?height=100&format=avif")
    assert response.content_type == "image/avif"
    assert seen == [("avif", False, 1)]


async def test_smart_crop_is_the_default_and_one_cache_entry_with_or_without_it(demo_client):
    first = await demo_client.get("/wallpaper?preset=phone")
    for query in ("preset=phone&crop=smart", "width=1170&height=2532&crop=SMART"):
        response = await demo_client.get(f"/wallpaper?{query}")
        assert (response.status, response.headers["X-Cache"]) == (200, "HIT"), query
        assert await response.read() == await first.read()
    centre = await demo_client.get("/wallpaper?preset=phone&crop=center")
    assert centre.headers["X-Cache"] == "MISS"
    wallpapers = [k for k in cache_keys(demo_client) if k.startswith("wallpaper:")]
    assert len(wallpapers) == 2


async def test_etag_is_strong_stable_and_stored_with_the_output(demo_client):
    first = await demo_client.get("/wallpaper?height=200")
    second = await demo_client.get("/wallpaper?height=200")
    assert first.headers["ETag"] == second.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', first.headers["ETag"])
    stored = [v for k, v in pipeline_of(demo_client).cache.view().items()
              if k.startswith("wallpaper:")]
    assert [r.etag for r in stored] == [first.headers["ETag"]]  # hashed once, when made
    assert isinstance(stored[0], Rendition)


async def test_head_has_the_headers_and_no_body(demo_client):
    get = await demo_client.get("/wallpaper?height=200")
    head = await demo_client.head("/wallpaper?height=200")
    assert head.status == 200
    assert head.headers["Content-Length"] == get.headers["Content-Length"] == str(
        len(await get.read()))
    assert head.headers["ETag"] == get.headers["ETag"]
    assert await head.read() == b""


async def test_the_list_is_html_for_browsers_and_json_otherwise(demo_client):
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    html = await demo_client.get("/", headers={"Accept": browser})
    assert html.content_type == "text/html"
    assert html.headers["Vary"] == "Accept, Accept-Encoding"  # gzipped for aiohttp's client
    assert "<!doctype html>" in await html.text()
    for accept in ("application/json", "*/*", ""):
        response = await demo_client.get("/", headers={"Accept": accept})
        assert response.content_type == "application/json"
    api = await demo_client.get("/api/photos", headers={"Accept": browser})
    assert api.content_type == "application/json"
    assert api.headers["Vary"] == "Accept-Encoding"  # but not on Accept


def encoded(shade: int, image_format: str) -> bytes:
    """A square, evenly grey image: a wallpaper made from it shows which one it came from."""
    out = io.BytesIO()
    Image.new("L", (100, 100), shade).save(out, image_format)
    return out.getvalue()


SHADES = {"large": 60, "full_res": 200}  # each Perseverance source image its own grey


@pytest.mark.parametrize(("query", "source"), [
    ("height=600", "large"),
    ("height=1200", "large"),
    ("width=1200&height=1200&fit=contain", "large"),
    ("height=1201", "full_res"),
    ("width=1201&height=100", "full_res"),
    ("preset=720p", "full_res"),
    ("preset=4k", "full_res"),
])
async def test_perseverance_starts_from_large_jpegs_and_full_res_for_big_outputs(
        aiohttp_client, mock_nasa, query, source):
    payload = fixture_json("m2020-raw/m2020_raw_images_sol1965_page0_num3.json")
    mock_nasa.get(re.compile(r"https://mars\.nasa\.gov/rss/api/\?.*"), payload=payload)
    mock_nasa.get(re.compile(r".*_1200\.jpg"), body=encoded(SHADES["large"], "JPEG"), repeat=True)
    mock_nasa.get(re.compile(r".*\.png"), body=encoded(SHADES["full_res"], "PNG"), repeat=True)
    client = await aiohttp_client(create_app(Settings(rover="perseverance")))

    listing = await (await client.get("/api/photos")).json()
    image, _ = await image_of(client, query)

    assert (listing["source"], listing["rover"], listing["sol"]) == ("m2020", "perseverance", 1965)
    centre = image.convert("L").getpixel((image.width // 2, image.height // 2))
    assert abs(centre - SHADES[source]) <= 3
    files = next(item["image_files"] for item in payload["images"]
                 if item["image_files"]["large"] == listing["photos"][0]["img_src"])
    images = {str(url) for _, url in mock_nasa.requests if url.path != "/rss/api/"}
    assert images == {files[source]}


def test_download_names_stay_plain_ascii_whatever_the_feed_says():
    from marsserver.core.entries import filename
    from marsserver.imaging import Spec
    from marsserver.sources import Photo

    photo = Photo("1", 'Mastcam\u00e9\u0661"\r\nX', "t", "u")
    name = filename("curiosity", 5, photo, Spec(1080, 1920, "cover"))
    assert name == "curiosity-sol5-Mastcam_____X-1920x1080.jpg"
    assert name.isascii()
