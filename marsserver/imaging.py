"""Imaging: turn a source image into the wallpaper a `Spec` describes.

Plain, blocking Pillow code: the pipeline runs it in a thread pool (Pillow releases the GIL
while decoding, resampling and encoding), never on the event loop. Like thumbor and imgproxy,
it refuses what it should not open: only JPEG and PNG, and the pixel count is checked from
the header before anything is decoded (decompression bombs).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image

from .errors import BadParameter, BadUpstream

FORMATS = ("JPEG", "PNG")
MIN_SIZE = 16
MAX_HEIGHT = 4320
MAX_WIDTH = 7680
SLIVER_WIDTH = 4 * MAX_HEIGHT  # 4:1, wider than any real camera frame or ultrawide screen
FITS = ("scale", "cover", "contain")
MEDIA_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png"}
DEFAULT_QUALITY = 85
LETTERBOX = 0  # black bars for fit=contain, in grayscale and in colour
# Chosen by measurement (bench/resize.py and the README): on the rover images bicubic output
# is 43-58 dB PSNR from Lanczos' (visually identical; round trips keep detail within 0.7 dB)
# and resamples about 26% faster.
RESAMPLING = Image.Resampling.BICUBIC


@dataclass(frozen=True, slots=True)
class Spec:
    """One distinct output. Equal specs are one cache entry and one coalesced flight."""

    height: int
    width: int | None = None  # None: scale to `height`, keeping the aspect ratio
    fit: str = "scale"
    format: str = "jpeg"
    quality: int = DEFAULT_QUALITY  # 0 for png, which has no quality

    @property
    def key(self) -> str:
        return f"{self.width or ''}x{self.height}-{self.fit}-q{self.quality}.{self.format}"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


PRESETS = {  # name: (width, height), for common screens
    "720p": (1280, 720), "1080p": (1920, 1080), "1440p": (2560, 1440), "4k": (3840, 2160),
    "ultrawide": (3440, 1440), "phone": (1170, 2532), "tablet": (1640, 2360),
}


def wallpaper(data: bytes, spec: Spec, *, max_pixels: int) -> bytes:
    """Make the wallpaper `spec` describes from encoded `data`.

    Grayscale stays grayscale in JPEG and PNG (a third of the bytes). Raises `BadUpstream`
    for anything that is not a sound JPEG or PNG within `max_pixels`.
    """
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            return _encode(_fitted(image, spec, max_pixels), spec)
    except (OSError, SyntaxError, ValueError, MemoryError, Image.DecompressionBombError) as error:
        # Pillow reports unknown, truncated and corrupt data through these.
        raise BadUpstream(f"source image unusable: {error}") from None


def _fitted(image: Image.Image, spec: Spec, max_pixels: int) -> Image.Image:
    source_width, source_height = image.size
    if source_width * source_height > max_pixels:
        raise BadUpstream(f"source image too large: {source_width}x{source_height} pixels")
    width = spec.width or max(1, round(source_width * spec.height / source_height))
    if width > SLIVER_WIDTH:
        # A sliver of a source (1000x10) must not become a 432000-pixel-wide output. It is
        # the asked-for height that does not fit this photo, not a broken photo.
        raise BadParameter(f"height {spec.height} would make this {source_width}x{source_height}"
                           f" photo wider than {SLIVER_WIDTH} pixels")
    scale = (min if spec.fit == "contain" else max)(width / source_width,
                                                   spec.height / source_height)
    if image.format == "JPEG":
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still covers what we need:
        # far less to decode and to resample when shrinking.
        image.draft(image.mode, (math.ceil(source_width * scale),
                                 math.ceil(source_height * scale)))
    image = _normalised(image)
    if spec.fit == "contain":
        return _contained(image, width, spec.height)
    box = _crop_box(image, width, spec.height) if spec.fit == "cover" else None
    return image.resize((width, spec.height), RESAMPLING, box=box, reducing_gap=3.0)


def _normalised(image: Image.Image) -> Image.Image:
    """8-bit grayscale or RGB, whatever the source's mode."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit and float grayscale: scale to 8 bits rather than clip everything to white.
        image = image.convert("I").point(lambda value: value / 256)
    mode = "L" if image.mode in ("1", "L", "LA", "I") else "RGB"
    return image if image.mode == mode else image.convert(mode)


def _crop_box(image: Image.Image, width: int, height: int) -> tuple[float, float, float, float]:
    """The centred part of `image` with the output's aspect ratio."""
    source_width, source_height = image.size
    if source_width / source_height > width / height:  # too wide: trim the sides
        kept = source_height * width / height
        return ((source_width - kept) / 2, 0, (source_width + kept) / 2, source_height)
    kept = source_width * height / width  # too tall: trim top and bottom
    return (0, (source_height - kept) / 2, source_width, (source_height + kept) / 2)


def _contained(image: Image.Image, width: int, height: int) -> Image.Image:
    scale = min(width / image.width, height / image.height)
    inner = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    canvas = Image.new(image.mode, (width, height), LETTERBOX)
    canvas.paste(image.resize(inner, RESAMPLING, reducing_gap=3.0),
                 ((width - inner[0]) // 2, (height - inner[1]) // 2))
    return canvas


def _encode(image: Image.Image, spec: Spec) -> bytes:
    out = io.BytesIO()
    if spec.format == "png":
        image.save(out, "PNG", compress_level=6)
    elif spec.format == "webp":
        image.save(out, "WEBP", quality=spec.quality, method=4)
    else:
        image.save(out, "JPEG", quality=spec.quality)
    return out.getvalue()
