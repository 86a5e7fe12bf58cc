"""Resizing real rover images: exact height, aspect ratio, grayscale kept, bad input refused."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from marsserver.errors import BadParameter, BadUpstream
from marsserver.imaging import Spec, wallpaper

from .stub import FIXTURES

NAVCAM = (FIXTURES / "images" / "sol_4638-NAV_RIGHT_B_12.jpg").read_bytes()  # 1024x1024 L
MASTCAM_Z = (FIXTURES / "images" / "sol_1605-MCZ_LEFT_22.jpg").read_bytes()  # 1200x874 RGB
BIG = 10**9


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("height", [16, 300, 874, 1080, 2160])
def test_output_is_exactly_the_requested_height_with_the_aspect_ratio_kept(height):
    image = opened(wallpaper(MASTCAM_Z, Spec(height), max_pixels=BIG))
    assert image.format == "JPEG"
    assert image.height == height
    assert image.width == round(1200 * height / 874)
    assert image.mode == "RGB"


def test_grayscale_stays_grayscale():
    image = opened(wallpaper(NAVCAM, Spec(512), max_pixels=BIG))
    assert (image.mode, image.size) == ("L", (512, 512))


def test_png_sources_are_accepted():
    png = io.BytesIO()
    opened(MASTCAM_Z).save(png, "PNG")
    assert opened(wallpaper(png.getvalue(), Spec(100), max_pixels=BIG)).height == 100


@pytest.mark.parametrize("data", [b"<html>not an image</html>", MASTCAM_Z[: len(MASTCAM_Z) // 3],
                                  b""])
def test_garbage_and_truncated_images_are_a_bad_upstream(data):
    with pytest.raises(BadUpstream, match="source image unusable"):
        wallpaper(data, Spec(100), max_pixels=BIG)


def test_formats_other_than_jpeg_and_png_are_refused():
    gif = io.BytesIO()
    opened(NAVCAM).save(gif, "GIF")
    with pytest.raises(BadUpstream):
        wallpaper(gif.getvalue(), Spec(100), max_pixels=BIG)


def test_images_over_the_pixel_budget_are_refused_before_decoding():
    with pytest.raises(BadUpstream, match="too large: 1200x874"):
        wallpaper(MASTCAM_Z, Spec(100), max_pixels=1200 * 874 - 1)


def test_a_sliver_of_a_source_cannot_become_a_gigantic_output():
    sliver = io.BytesIO()
    Image.new("L", (1000, 10)).save(sliver, "PNG")
    with pytest.raises(BadParameter, match="wider than 17280 pixels"):
        wallpaper(sliver.getvalue(), Spec(4320), max_pixels=BIG)


def test_16_bit_grayscale_is_scaled_not_clipped_to_white():
    png = io.BytesIO()
    Image.new("I;16", (64, 64), 32768).save(png, "PNG")
    image = opened(wallpaper(png.getvalue(), Spec(32), max_pixels=BIG))
    assert image.mode == "L"
    assert 120 <= image.getpixel((16, 16)) <= 136
