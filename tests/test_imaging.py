"""Resizing (imaging.py): real rover images, then synthetic ones at the edges.

Real images: sizes, modes, formats, letterbox bands, quality against a Lanczos reference, and
bad input refused. At the edges: exact size bounds, one-pixel outputs, which part of a photo
`cover` keeps on every resampling path, sources that are 1-bit or have an alpha channel, the
documented resampling plan (docs/performance.md) and the encoders' settings (cases mutation
testing showed no other test pinned down; tests/MUTANTS.md)."""

from __future__ import annotations

import io
import random
from dataclasses import replace

import pytest
from PIL import Image, ImageChops, ImageFile

from bench.resize import lanczos, psnr
from marsserver import imaging
from marsserver.errors import BadParameter, BadUpstream
from marsserver.imaging import SLIVER_WIDTH, Spec, wallpaper

from .stub import FIXTURES

NAVCAM = (FIXTURES / "images" / "sol_4638-NAV_RIGHT_B_12.jpg").read_bytes()  # 1024x1024 L
# 1200x874 RGB, the most detailed frame: the one furthest from Lanczos in bench/resize.py.
MASTCAM_Z = (FIXTURES / "images" / "sol_1605-MCZ_LEFT_22.jpg").read_bytes()
SOURCES = {"L": NAVCAM, "RGB": MASTCAM_Z}
SIZES = {"L": (1024, 1024), "RGB": (1200, 874)}
BIG = 10**9
LOSSLESS = 40.0  # dB from the reference: no visible difference
LOSSY = 30.0  # dB between a JPEG or WebP at quality 85 and the same pixels losslessly


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def made(source: bytes, height: int, **spec: object) -> Image.Image:
    if spec.get("format") == "png":
        spec["quality"] = 0
    return opened(wallpaper(source, Spec(height, **spec), max_pixels=BIG))


def test_psnr_tells_a_one_pixel_shift_from_the_real_thing():
    """The quality checks below can fail: the metric sees a shift of one pixel."""
    reference = lanczos(MASTCAM_Z, 600)
    shifted = ImageChops.offset(reference, 1, 0)
    assert psnr(reference, reference) == float("inf")
    assert psnr(reference, shifted) < 30


@pytest.mark.parametrize("height", [16, 300, 874, 1080, 2160])
def test_output_is_exactly_the_requested_height_with_the_aspect_ratio_kept(height):
    image = made(MASTCAM_Z, height)
    assert (image.format, image.mode) == ("JPEG", "RGB")
    assert image.size == (round(1200 * height / 874), height)


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize(("fmt", "pillow_format"), [("jpeg", "JPEG"), ("webp", "WEBP"),
                                                     ("avif", "AVIF"), ("png", "PNG")])
def test_every_format_has_the_size_and_mode_asked_for(mode, fmt, pillow_format):
    """Grayscale stays grayscale where the format has it (AVIF as 4:0:0, luma alone); WebP
    has only colour, so gray."""
    image = made(SOURCES[mode], 600, width=800, fit="cover", format=fmt)
    assert (image.format, image.size) == (pillow_format, (800, 600))
    if fmt == "webp" and mode == "L":
        assert image.mode == "RGB"
        red, green, blue = image.split()
        assert ImageChops.difference(red, green).getextrema()[1] <= 4
        assert ImageChops.difference(red, blue).getextrema()[1] <= 4
    else:
        assert image.mode == mode


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_quality_sets_how_many_bytes_lossy_formats_spend(fmt):
    sizes = [len(wallpaper(MASTCAM_Z, Spec(600, format=fmt, quality=quality), max_pixels=BIG))
             for quality in (30, 60, 90)]
    assert sizes == sorted(sizes)
    assert len(set(sizes)) == 3


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize("height", [300, 400, 512, 600, 1080])  # 512: half the Navcam
def test_scaled_wallpapers_look_like_a_full_size_lanczos_resize(mode, height):
    """Whatever shortcut resizing takes (DCT scaling, cheaper filters), the result stays
    within 40 dB PSNR of decoding everything and resizing with Lanczos; lossless output
    measures the resize alone, and JPEG must add no more than its own loss."""
    reference = lanczos(SOURCES[mode], height)
    assert psnr(reference, made(SOURCES[mode], height, format="png")) >= LOSSLESS
    assert psnr(reference, made(SOURCES[mode], height)) >= LOSSY


def test_odd_sized_jpegs_are_not_stretched_by_dct_scaling():
    """Decoded at 1/2 scale, 1199x873 becomes 600x437 with half a pixel of padding at the
    right and the bottom; resizing all of it would stretch the picture by that half pixel."""
    odd = io.BytesIO()
    opened(MASTCAM_Z).crop((0, 0, 1199, 873)).save(odd, "JPEG", quality=95)
    reference = lanczos(odd.getvalue(), 300)
    assert psnr(reference, made(odd.getvalue(), 300, format="png")) >= LOSSLESS


def test_mpo_sources_are_resized_as_their_first_frame_is_as_a_jpeg():
    """Pillow opens a JPEG with frames appended (MPO) as a format of its own; it must still
    be decoded at a reduced scale where a JPEG would be, not decoded whole and resized."""
    frame, jpeg, mpo = opened(MASTCAM_Z), io.BytesIO(), io.BytesIO()
    frame.save(jpeg, "JPEG", quality=90)
    frame.save(mpo, "MPO", quality=90, save_all=True, append_images=[frame.rotate(180)])
    assert opened(mpo.getvalue()).format == "MPO"
    for height in (300, 80):  # decoded at 1/2 and at 1/4 scale
        assert ImageChops.difference(made(mpo.getvalue(), height, format="png"),
                                     made(jpeg.getvalue(), height, format="png")).getbbox() is None


def cover_box(size: tuple[int, int], width: int, height: int,
              where: float) -> tuple[float, float, float, float]:
    """The part of a `size` source a `width` x `height` cover keeps, `where` along the room
    left (0.5: centred)."""
    source_width, source_height = size
    if source_width / source_height > width / height:
        kept = source_height * width / height
        left = (source_width - kept) * where
        return (left, 0, left + kept, source_height)
    kept = source_width * height / width
    top = (source_height - kept) * where
    return (0, top, source_width, top + kept)


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (600, 1200), (200, 200)])
def test_crop_center_is_the_centre_of_the_photo_resized(width, height):
    reference = lanczos(MASTCAM_Z, height, width, cover_box(SIZES["RGB"], width, height, 0.5))
    assert psnr(reference, made(MASTCAM_Z, height, width=width, fit="cover", crop="center",
                                format="png")) >= LOSSLESS


@pytest.mark.parametrize(("width", "height"), [(1170, 2532), (1640, 2360), (300, 900)])
def test_a_smart_crop_is_the_part_it_chose_resized(width, height):
    """The Navcam frame's subject (the rover's arm) is left of centre: smart crop keeps
    another part than the centre, and still resizes it as well as any other cover."""
    with Image.open(io.BytesIO(NAVCAM)) as image:
        image.load()
        size = image.size
        box = cover_box(size, width, height, 0.5)
        across, down = (box[2] - box[0]) / size[0], (box[3] - box[1]) / size[1]
        where = imaging._detail_at(image, across, down)
    assert where != (0.5, 0.5)
    moved = where[0] if across < 1 else where[1]
    reference = lanczos(NAVCAM, height, width, cover_box(size, width, height, moved))
    smart = made(NAVCAM, height, width=width, fit="cover", format="png")
    assert psnr(reference, smart) >= LOSSLESS
    assert psnr(smart, made(NAVCAM, height, width=width, fit="cover", format="png",
                            crop="center")) < LOSSY


def letterboxed(mode: str, width: int, height: int) -> tuple[tuple[int, int, int, int],
                                                             list[tuple[int, int, int, int]]]:
    """Where the photo lands in a `width` x `height` contain canvas, and the two bars."""
    source_width, source_height = SIZES[mode]
    scale = min(width / source_width, height / source_height)
    inner_width, inner_height = round(source_width * scale), round(source_height * scale)
    left, top = (width - inner_width) // 2, (height - inner_height) // 2
    right, bottom = left + inner_width, top + inner_height
    if inner_width < width:  # bars left and right
        return (left, top, right, bottom), [(0, 0, left, height), (right, 0, width, height)]
    return (left, top, right, bottom), [(0, 0, width, top), (0, bottom, width, height)]


def brightest(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    extrema = image.crop(box).getextrema()
    return max(high for _, high in extrema) if image.mode == "RGB" else extrema[1]


def away_from(bar: tuple[int, int, int, int], photo: tuple[int, int, int, int],
              margin: int) -> tuple[int, int, int, int]:
    """`bar` without the `margin` pixels next to the photo."""
    left, top, right, bottom = bar
    if right == photo[0]:
        right -= margin
    if left == photo[2]:
        left += margin
    if bottom == photo[1]:
        bottom -= margin
    if top == photo[3]:
        top += margin
    return left, top, right, bottom


# Wider than the photo (bars left and right) and taller (bars above and below).
CANVASES = [(1280, 720), (600, 1200)]


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize(("width", "height"), CANVASES)
def test_contain_puts_the_whole_photo_between_pure_black_bars(mode, width, height):
    image = made(SOURCES[mode], height, width=width, fit="contain", format="png")
    photo, bars = letterboxed(mode, width, height)
    assert (image.mode, image.size) == (mode, (width, height))
    assert all(bar[2] - bar[0] >= 100 and bar[3] - bar[1] >= 100 for bar in bars)
    for bar in bars:
        assert brightest(image, bar) == 0
    reference = lanczos(SOURCES[mode], photo[3] - photo[1], photo[2] - photo[0])
    assert psnr(reference, image.crop(photo)) >= LOSSLESS


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize(("width", "height"), CANVASES)
@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_lossy_letterbox_bars_are_black_but_for_ringing_at_the_photo(mode, width, height, fmt):
    """Lossy codecs ring in the blocks the photo's edge crosses (up to ~20 levels here);
    past one 16 px block the bars must be black again."""
    image = made(SOURCES[mode], height, width=width, fit="contain", format=fmt)
    photo, bars = letterboxed(mode, width, height)
    for bar in bars:
        assert brightest(image, bar) <= 32
        assert brightest(image, away_from(bar, photo, 16)) <= 2
    lossless = made(SOURCES[mode], height, width=width, fit="contain", format="png")
    assert psnr(lossless.convert(image.mode), image) >= LOSSY


def test_png_sources_are_accepted():
    png = io.BytesIO()
    opened(MASTCAM_Z).save(png, "PNG")
    image = opened(wallpaper(png.getvalue(), Spec(300, format="png", quality=0), max_pixels=BIG))
    assert psnr(lanczos(MASTCAM_Z, 300), image) >= LOSSLESS


@pytest.mark.parametrize("data", [b"<html>not an image</html>", MASTCAM_Z[: len(MASTCAM_Z) // 3],
                                  b""])
def test_garbage_and_truncated_images_are_a_bad_upstream(data):
    """Said in words; what Pillow said (an exception, an object's address) is the cause."""
    with pytest.raises(BadUpstream) as raised:
        wallpaper(data, Spec(100), max_pixels=BIG)
    assert raised.value.detail == "source image unusable: not a complete JPEG or PNG"
    assert "Error: " in raised.value.cause


def test_formats_other_than_jpeg_and_png_are_refused():
    gif = io.BytesIO()
    opened(NAVCAM).save(gif, "GIF")
    with pytest.raises(BadUpstream):
        wallpaper(gif.getvalue(), Spec(100), max_pixels=BIG)


def test_images_over_the_pixel_budget_are_refused_before_decoding(monkeypatch):
    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("decoded a source over the pixel budget")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
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
    image = opened(wallpaper(png.getvalue(), Spec(32, format="png", quality=0), max_pixels=BIG))
    assert image.mode == "L"
    assert image.getextrema() == (128, 128)


# Synthetic images at the edges -------------------------------------------------------------

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


def made_as(source: bytes, spec: Spec, max_pixels: int = 10**9) -> Image.Image:
    return Image.open(io.BytesIO(wallpaper(source, spec, max_pixels=max_pixels)))


SAND = (190, 130, 90)


def sand_with_detail(size: tuple[int, int], box: tuple[int, int, int, int]) -> bytes:
    """A JPEG of flat sand with a little grain, and a rock (16 px cells of random gray)
    filling `box`: detail that sits wherever the box says."""
    rng = random.Random(1)
    grain = Image.frombytes("L", size, bytes(rng.randrange(122, 134)
                                             for _ in range(size[0] * size[1])))
    image = Image.merge("RGB", [grain.point(lambda v, c=c: v - 128 + c) for c in SAND])
    for x in range(box[0], box[2], 16):
        for y in range(box[1], box[3], 16):
            image.paste((rng.randrange(256),) * 3, (x, y, min(x + 16, box[2]), min(y + 16, box[3])))
    return encoded(image, "JPEG")


def rock_kept(image: Image.Image) -> float:
    """The share of the output's pixels that are not sand (the rock's cells)."""
    sand = Image.new("RGB", image.size, SAND)
    difference = ImageChops.difference(image.convert("RGB"), sand).convert("L")
    return sum(difference.point(lambda v: 255 if v > 40 else 0).histogram()[255:]) / (
        image.width * image.height)


# A 4:3 frame to a phone keeps a vertical strip (the crop slides across); a 3:4 frame to a
# 16:9 screen keeps a horizontal one (it slides down). The rock is where a centre crop loses it.
@pytest.mark.parametrize(("size", "rock", "spec"), [
    ((1200, 900), (0, 300, 240, 600), Spec(2532, 1170, "cover")),  # left edge
    ((1200, 900), (960, 300, 1200, 600), Spec(2532, 1170, "cover")),  # right edge
    ((900, 1200), (300, 0, 600, 240), Spec(1080, 1920, "cover")),  # top edge
    ((900, 1200), (300, 960, 600, 1200), Spec(1080, 1920, "cover")),  # bottom edge
    ((1200, 900), (960, 0, 1200, 240), Spec(2532, 1170, "cover")),  # top right corner
    ((900, 1200), (0, 960, 240, 1200), Spec(1080, 1920, "cover")),  # bottom left corner
    ((1200, 900), (0, 300, 120, 600), Spec(600, 600, "cover")),  # shrunk 1.5x: Hamming pass
    ((1200, 900), (0, 0, 160, 140), Spec(150, 300, "cover")),  # top left, shrunk 4x: DCT
])
def test_smart_crop_keeps_the_detail_wherever_it_sits(size, rock, spec):
    source = sand_with_detail(size, rock)
    smart = made_as(source, spec)
    assert smart.size == (spec.width, spec.height)
    assert rock_kept(smart) > 0.02
    assert rock_kept(made_as(source, replace(spec, crop="center"))) == 0


@pytest.mark.parametrize("spec", [Spec(2532, 1170, "cover"), Spec(1080, 1920, "cover"),
                                  Spec(100, 100, "cover", "png", 0)])
@pytest.mark.parametrize("size", [(1200, 900), (900, 1200)])
def test_on_a_uniform_frame_smart_crop_is_the_centre_crop(size, spec):
    source = encoded(Image.new("RGB", size, SAND), "JPEG")
    assert wallpaper(source, spec, max_pixels=BIG) == wallpaper(
        source, replace(spec, crop="center"), max_pixels=BIG)


def test_a_source_of_exactly_the_pixel_limit_is_accepted_and_one_more_is_not():
    source = encoded(Image.new("L", (100, 100), 128))
    assert made_as(source, Spec(50), max_pixels=100 * 100).size == (50, 50)
    with pytest.raises(BadUpstream, match="too large: 100x100"):
        made_as(source, Spec(50), max_pixels=100 * 100 - 1)


def test_an_output_exactly_as_wide_as_the_sliver_limit_is_made():
    source = encoded(Image.new("L", (SLIVER_WIDTH // 10, 16), 128))
    assert made_as(source, Spec(160)).size == (SLIVER_WIDTH, 160)


def test_a_very_tall_sliver_scales_to_one_pixel_wide_not_more():
    source = encoded(Image.new("L", (20, 4000), 128))
    assert made_as(source, Spec(100)).size == (1, 100)


@pytest.mark.parametrize(("size", "band"), [((1000, 10), "row"), ((10, 1000), "column")])
def test_contain_keeps_a_one_pixel_band_of_a_sliver_between_black_bars(size, band):
    source = encoded(Image.new("L", size, 255))
    image = made_as(source, Spec(100, 100, "contain", "png", 0))
    assert image.size == (100, 100)
    lit = {(x if band == "column" else y)
           for x in range(100) for y in range(100) if image.getpixel((x, y)) > 128}
    assert lit == {49}


@pytest.mark.parametrize(("source", "spec"), [
    (thirds(3000, 1000, "PNG"), Spec(500, 500, "cover", "png", 0, "center")),  # shrink 2: Hamming
    (thirds(1000, 3000, "PNG"), Spec(500, 500, "cover", "png", 0, "center")),
    (thirds(3000, 1000, "JPEG"), Spec(100, 100, "cover", "png", 0, "center")),  # 10: DCT scaling
    (thirds(1000, 3000, "JPEG"), Spec(100, 100, "cover", "png", 0, "center")),
    (thirds(1000, 3000, "PNG"), Spec(1500, 1500, "cover", "png", 0, "center")),  # enlarged
])
def test_crop_center_keeps_the_centre_of_the_photo_on_every_resampling_path(source, spec):
    image = made_as(source, spec).convert("RGB")
    near, far = spec.height // 20, spec.height - 1 - spec.height // 20
    for point in ((near, near), (far, far), (near, far), (far, near)):
        assert greenish(image.getpixel(point)), (point, image.getpixel(point))


@pytest.mark.parametrize("mode", ["1", "LA"])
def test_one_bit_and_gray_with_alpha_sources_stay_grayscale(mode):
    source = encoded(Image.new(mode, (64, 48), 1 if mode == "1" else (200, 255)))
    image = made_as(source, Spec(24))
    assert (image.mode, image.size) == ("L", (32, 24))


HAMMING, BICUBIC, LANCZOS = (Image.Resampling.HAMMING, Image.Resampling.BICUBIC,
                             Image.Resampling.LANCZOS)


@pytest.fixture
def resize_calls(monkeypatch):
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
def test_the_resampling_plan_is_the_documented_one(resize_calls, fmt, size, spec, plan):
    image = made_as(encoded(Image.new("RGB", size, GREEN), fmt), spec)
    assert image.size == plan[-1][1]
    assert resize_calls == plan


def test_drafted_is_one_when_pillow_does_not_draft():
    """Pillow's `draft` returns None when it changes nothing, as for a second draft."""
    with Image.open(io.BytesIO(encoded(Image.new("L", (400, 400)), "JPEG"))) as image:
        image.draft("L", (200, 200))
        assert imaging._drafted(image, 12.0) == 1.0
        assert image.size == (200, 200)


def test_32_bit_gray_is_scaled_to_8_bits_not_clipped():
    """Mode I is what Pillow before 10.3 opened 16-bit gray PNGs in."""
    image = imaging._normalised(Image.new("I", (4, 4), 32768))
    assert (image.mode, image.getextrema()) == ("L", (128, 128))


@pytest.mark.parametrize(("fmt", "quality", "settings"), [
    ("png", 0, {"format": "PNG", "compress_level": 6}),
    ("webp", 70, {"format": "WEBP", "quality": 70, "method": 4}),
    ("jpeg", 70, {"format": "JPEG", "quality": 70}),
    ("avif", 70, {"format": "AVIF", "quality": 70, "speed": 9, "max_threads": 1}),
])
def test_pixels_are_encoded_with_the_documented_settings(fmt, quality, settings):
    """At 1x nothing is resampled, so the bytes are exactly the encoder's with those settings
    (a PNG's zlib header even names its compression level)."""
    pixels = Image.frombytes("RGB", (64, 48), random.Random(0).randbytes(64 * 48 * 3))
    expected = io.BytesIO()
    pixels.save(expected, **settings)
    output = wallpaper(encoded(pixels), Spec(48, format=fmt, quality=quality), max_pixels=10**9)
    assert output == expected.getvalue()
