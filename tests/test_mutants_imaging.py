"""Resizing at its edges: exact size bounds, one-pixel outputs, which part of a photo `cover`
keeps on every resampling path, and sources that are 1-bit or have an alpha channel."""

from __future__ import annotations

import io

import pytest
from PIL import Image

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
