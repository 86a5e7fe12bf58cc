"""Imaging: turn a source image into a wallpaper of an exact height.

Plain, blocking Pillow code: the pipeline runs it in a thread pool (Pillow releases the GIL
while decoding, resampling and encoding), never on the event loop. Like thumbor and imgproxy,
it refuses what it should not open: only JPEG and PNG, and the pixel count is checked from
the header before anything is decoded (decompression bombs).
"""

from __future__ import annotations

import io

from PIL import Image

from .errors import BadUpstream

FORMATS = ("JPEG", "PNG")
MIN_HEIGHT = 16
MAX_HEIGHT = 4320
MAX_WIDTH = 4 * MAX_HEIGHT  # 4:1, wider than any real camera frame or ultrawide screen
JPEG_QUALITY = 85
# Chosen by measurement (bench/resize.py and the README): on the rover images bicubic output
# is 43-58 dB PSNR from Lanczos' (visually identical; round trips keep detail within 0.7 dB)
# and resamples about 26% faster.
RESAMPLING = Image.Resampling.BICUBIC


def wallpaper(data: bytes, height: int, *, max_pixels: int) -> bytes:
    """Resize `data` to exactly `height` pixels high, aspect ratio kept, as JPEG bytes.

    Grayscale stays grayscale (a third of the bytes). Raises `BadUpstream` for anything
    that is not a sound JPEG or PNG within `max_pixels`.
    """
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            return _encode(_resize(image, height, max_pixels))
    except (OSError, SyntaxError, ValueError, MemoryError, Image.DecompressionBombError) as error:
        # Pillow reports unknown, truncated and corrupt data through these.
        raise BadUpstream(f"source image unusable: {error}") from None


def _resize(image: Image.Image, height: int, max_pixels: int) -> Image.Image:
    width, source_height = image.size
    if width * source_height > max_pixels:
        raise BadUpstream(f"source image too large: {width}x{source_height} pixels")
    size = (max(1, round(width * height / source_height)), height)
    if size[0] > MAX_WIDTH:
        # A sliver of a source (1000x10) must not become a 432000-pixel-wide output.
        raise BadUpstream(f"source image {width}x{source_height} is too wide for {height} high")
    if image.format == "JPEG":
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still covers `size`:
        # far less to decode and to resample when shrinking.
        image.draft(image.mode, size)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit and float grayscale: scale to 8 bits rather than clip everything to white.
        image = image.convert("I").point(lambda value: value / 256)
    mode = "L" if image.mode in ("1", "L", "LA", "I") else "RGB"
    if image.mode != mode:
        image = image.convert(mode)
    return image.resize(size, RESAMPLING, reducing_gap=3.0)


def _encode(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()
