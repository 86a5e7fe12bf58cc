"""Resizing at its edges: exact size bounds, one-pixel outputs, which part of a photo `cover`
keeps on every resampling path, sources that are 1-bit or have an alpha channel, the
documented resampling plan (README, Performance) and the encoders' settings."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from marsserver import imaging
from marsserver.errors import BadUpstream
from marsserver.imaging import SLIVER_WIDTH, Spec, wallpaper

RED, GREEN, BLUE = (220, 30, 30), (30, 200, 30), (30, 30, 220)


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


def thirds(width: int, height: int, fmt: str) -> bytes:
    """A photo in three bands, red, green, blue, across its longer side: its centre is green."""
    image = Image.new("RGB", (width, height), GREEN)
    if width > height:
        image.paste(RED, (0, 0, width // 3, height))
        image.paste(BLUE, (2 * width // 3, 0, width, height))
    else:
        image.paste(RED, (0, 0, width, height // 3))
        image.paste(BLUE, (0, 2 * height // 3, width, height))
    return encoded(image, fmt)


def greenish(pixel: tuple[int, int, int]) -> bool:
    red, green, blue = pixel
    return green > 150 and red < 80 and blue < 80


def made(source: bytes, spec: Spec, max_pixels: int = 10**9) -> Image.Image:
    return Image.open(io.BytesIO(wallpaper(source, spec, max_pixels=max_pixels)))


def test_a_source_of_exactly_the_pixel_limit_is_accepted_and_one_more_is_not():
    source = encoded(Image.new("L", (100, 100), 128))
    assert made(source, Spec(50), max_pixels=100 * 100).size == (50, 50)
    with pytest.raises(BadUpstream, match="too large: 100x100"):
        made(source, Spec(50), max_pixels=100 * 100 - 1)


def test_an_output_exactly_as_wide_as_the_sliver_limit_is_made():
    source = encoded(Image.new("L", (SLIVER_WIDTH // 10, 16), 128))
    assert made(source, Spec(160)).size == (SLIVER_WIDTH, 160)


def test_a_very_tall_sliver_scales_to_one_pixel_wide_not_more():
    source = encoded(Image.new("L", (20, 4000), 128))
    assert made(source, Spec(100)).size == (1, 100)


@pytest.mark.parametrize(("size", "band"), [((1000, 10), "row"), ((10, 1000), "column")])
def test_contain_keeps_a_one_pixel_band_of_a_sliver_between_black_bars(size, band):
    source = encoded(Image.new("L", size, 255))
    image = made(source, Spec(100, 100, "contain", "png", 0))
    assert image.size == (100, 100)
    lit = {(x if band == "column" else y)
           for x in range(100) for y in range(100) if image.getpixel((x, y)) > 128}
    assert lit == {49}


@pytest.mark.parametrize(("source", "spec"), [
    (thirds(3000, 1000, "PNG"), Spec(500, 500, "cover", "png", 0)),  # shrink 2: Hamming pass
    (thirds(1000, 3000, "PNG"), Spec(500, 500, "cover", "png", 0)),
    (thirds(3000, 1000, "JPEG"), Spec(100, 100, "cover", "png", 0)),  # shrink 10: DCT scaling
    (thirds(1000, 3000, "JPEG"), Spec(100, 100, "cover", "png", 0)),
    (thirds(1000, 3000, "PNG"), Spec(1500, 1500, "cover", "png", 0)),  # enlarged
])
def test_cover_keeps_the_centre_of_the_photo_on_every_resampling_path(source, spec):
    image = made(source, spec).convert("RGB")
    near, far = spec.height // 20, spec.height - 1 - spec.height // 20
    for point in ((near, near), (far, far), (near, far), (far, near)):
        assert greenish(image.getpixel(point)), (point, image.getpixel(point))


@pytest.mark.parametrize("mode", ["1", "LA"])
def test_one_bit_and_gray_with_alpha_sources_stay_grayscale(mode):
    source = encoded(Image.new(mode, (64, 48), 1 if mode == "1" else (200, 255)))
    image = made(source, Spec(24))
    assert (image.mode, image.size) == ("L", (32, 24))


HAMMING, BICUBIC, LANCZOS = (Image.Resampling.HAMMING, Image.Resampling.BICUBIC,
                             Image.Resampling.LANCZOS)


@pytest.fixture
def resizes(monkeypatch):
    """Every `Image.resize` as (size resized, new size, filter, box, reducing_gap)."""
    calls = []
    real = Image.Image.resize

    def spy(self, size, resample=None, box=None, reducing_gap=None):
        # Pillow resizes L and RGB images with bicubic when no filter is given.
        used = BICUBIC if resample is None else resample
        calls.append((self.size, size, used, box, reducing_gap))
        return real(self, size, resample, box, reducing_gap)

    monkeypatch.setattr(Image.Image, "resize", spy)
    return calls


@pytest.mark.parametrize(("fmt", "size", "spec", "plan"), [
    # Shrinking exactly 1x (a crop): bicubic, no Hamming pass.
    ("PNG", (200, 100), Spec(100, 100, "cover"),
     [((200, 100), (100, 100), BICUBIC, (50, 0, 150, 100), 3.0)]),
    # 1x-2.8x: Hamming across the kept columns, bicubic down the kept rows.
    ("PNG", (300, 100), Spec(50, 50, "cover"),
     [((300, 100), (50, 100), HAMMING, (100, 0, 200, 100), None),
      ((50, 100), (50, 50), BICUBIC, (0, 0, 50, 100), None)]),
    ("PNG", (100, 300), Spec(50, 50, "cover"),
     [((100, 300), (50, 300), HAMMING, (0, 0, 100, 300), None),
      ((50, 300), (50, 50), BICUBIC, (0, 100, 50, 200), None)]),
    # The smaller of the two shrinks decides: 2.8 across but 2.75 down, and the other way.
    ("PNG", (56, 55), Spec(20),
     [((56, 55), (20, 55), HAMMING, (0, 0, 56, 55), None),
      ((20, 55), (20, 20), BICUBIC, (0, 0, 20, 55), None)]),
    ("PNG", (55, 56), Spec(20),
     [((55, 56), (20, 56), HAMMING, (0, 0, 55, 56), None),
      ((20, 56), (20, 20), BICUBIC, (0, 0, 20, 56), None)]),
    # From 2.8x: a PNG has no DCT scaling, so bicubic with reducing_gap=3 (which, at 10x,
    # first box-reduces by 3).
    ("PNG", (140, 140), Spec(50), [((140, 140), (50, 50), BICUBIC, (0, 0, 140, 140), 3.0)]),
    ("PNG", (600, 200), Spec(20, 20, "cover"),
     [((600, 200), (20, 20), BICUBIC, (200, 0, 400, 200), 3.0)]),
    # A JPEG is decoded at 1/2 from 2.8x and at 1/4 from 10x, then resampled with Lanczos.
    ("JPEG", (140, 140), Spec(50), [((70, 70), (50, 50), LANCZOS, (0, 0, 70, 70), None)]),
    ("JPEG", (600, 200), Spec(20, 20, "cover"),
     [((150, 50), (20, 20), LANCZOS, (50, 0, 100, 50), None)]),
    ("JPEG", (100, 300), Spec(30), [((25, 75), (10, 30), LANCZOS, (0, 0, 25, 75), None)]),
    # Enlarging: decoded whole, bicubic.
    ("JPEG", (100, 50), Spec(100), [((100, 50), (200, 100), BICUBIC, (0, 0, 100, 50), 3.0)]),
])
def test_the_resampling_plan_is_the_documented_one(resizes, fmt, size, spec, plan):
    image = made(encoded(Image.new("RGB", size, GREEN), fmt), spec)
    assert image.size == plan[-1][1]
    assert resizes == plan


def test_drafted_is_one_when_pillow_does_not_draft():
    """Pillow's `draft` returns None when it changes nothing, as for a second draft."""
    with Image.open(io.BytesIO(encoded(Image.new("L", (400, 400)), "JPEG"))) as image:
        image.draft("L", (200, 200))
        assert imaging._drafted(image, 12.0) == 1.0
        assert image.size == (200, 200)


def test_32_bit_gray_is_scaled_to_8_bits_not_clipped():
    """Mode I is what Pillow before 10.3 (setup.cfg allows 10.1) opens 16-bit gray PNGs in."""
    image = imaging._normalised(Image.new("I", (4, 4), 32768))
    assert (image.mode, image.getextrema()) == ("L", (128, 128))


@pytest.mark.parametrize(("fmt", "quality", "settings"), [
    ("png", 0, {"format": "PNG", "compress_level": 6}),
    ("webp", 70, {"format": "WEBP", "quality": 70, "method": 4}),
    ("jpeg", 70, {"format": "JPEG", "quality": 70}),
])
def test_pixels_are_encoded_with_the_documented_settings(fmt, quality, settings):
    """At 1x nothing is resampled, so the bytes are exactly the encoder's with those settings
    (a PNG's zlib header even names its compression level)."""
    pixels = Image.frombytes("RGB", (64, 48), random.Random(0).randbytes(64 * 48 * 3))
    expected = io.BytesIO()
    pixels.save(expected, **settings)
    output = wallpaper(encoded(pixels), Spec(48, format=fmt, quality=quality), max_pixels=10**9)
    assert output == expected.getvalue()
